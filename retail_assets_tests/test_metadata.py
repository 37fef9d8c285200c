"""The UI's bar chart: an SVG whose bars are the values, read back as a browser would."""

import base64
import xml.etree.ElementTree as ET
from decimal import Decimal

from retail_assets.assets.metadata import bar_chart

SVG = "{http://www.w3.org/2000/svg}"


def drawn(labels, values) -> tuple[list[str], list[float], list[str]]:
    """The labels, bar lengths and value texts of the chart's image."""
    markdown = bar_chart(labels, values, "Units & <more>").value
    prefix = "![Units & <more>](data:image/svg+xml;base64,"
    assert markdown.startswith(prefix) and markdown.endswith(")")
    svg = ET.fromstring(base64.b64decode(markdown[len(prefix) : -1]))
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    assert texts[0] == "Units & <more>"  # escaped in the SVG, read back whole
    ground, *rects = svg.iter(f"{SVG}rect")
    bars = [float(rect.get("width")) for rect in rects]
    return texts[1::2], bars, texts[2::2]


def test_bars_are_in_proportion_to_the_values_in_the_given_order():
    labels, bars, values = drawn(["a <b>", "c & d", "e"], [10, Decimal("2.50"), 0])
    assert labels == ["a <b>", "c & d", "e"]
    assert bars[0] > 0 and bars[1] == bars[0] / 4 and bars[2] == 0
    assert values == ["10", "2.50", "0"]


def test_a_long_label_is_cut_and_a_chart_of_zeros_draws_no_bar():
    labels, bars, _ = drawn(["x" * 80, "y"], [0, 0])
    assert labels[0].endswith("…") and len(labels[0]) < 80 and labels[1] == "y"
    assert bars == [0, 0]


def test_no_rows_is_said_in_words():
    assert bar_chart([], [], "Top").value == "_Top: nothing to chart_"
