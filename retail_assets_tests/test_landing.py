"""The landing folder contract and the lake copy (no Spark needed)."""

import csv
import hashlib
import io
import random
from datetime import UTC, datetime

import pytest

from retail_assets.storage.lake import Lake
from retail_assets.storage.landing import scan_landing
from retail_assets_tests.helpers import write_group

ARRIVAL = datetime(2025, 3, 4, 5, 42, tzinfo=UTC)


def test_complete_group_belongs_to_its_arrival_hour(tmp_path):
    write_group(tmp_path, "group1", ARRIVAL)
    (group,) = scan_landing(tmp_path)
    assert group.complete and group.partition_key == "2025-03-04-05:00"
    assert set(group.files) == {"branches", "sales_agents", "sales_transactions"}


def test_group_missing_a_file_is_incomplete_and_says_which(tmp_path):
    write_group(tmp_path, "group1", ARRIVAL, skip=("sales_agents",))
    (group,) = scan_landing(tmp_path)
    assert not group.complete
    assert group.problems == ("missing the sales_agents file",)


def test_two_files_of_one_kind_are_ambiguous(tmp_path):
    folder = write_group(tmp_path, "group1", ARRIVAL)
    (folder / "branches_extra.csv").write_text("branch_id\n")
    (group,) = scan_landing(tmp_path)
    assert group.problems == ("ambiguous: 2 branches files",)


def test_file_pointing_outside_landing_is_refused(tmp_path):
    landing = tmp_path / "landing"
    folder = write_group(landing, "group1", ARRIVAL)
    secret = tmp_path / "secret.csv"
    secret.write_text("not yours\n")
    (folder / "branches_SS_raw_1.csv").unlink()
    (folder / "branches_SS_raw_1.csv").symlink_to(secret)
    (group,) = scan_landing(landing)
    assert group.problems == ("refused: branches_SS_raw_1.csv points outside landing",)


def test_group_folder_pointing_outside_landing_is_refused(tmp_path):
    elsewhere = write_group(tmp_path / "elsewhere", "group9", ARRIVAL)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "group9").symlink_to(elsewhere)
    (group,) = scan_landing(landing)
    assert group.problems == ("refused: the folder lies outside landing",)


def test_groups_in_number_order_and_other_folders_ignored(tmp_path):
    for name in ("group10", "group2", "group1"):
        write_group(tmp_path, name, ARRIVAL)
    (tmp_path / ".group3.tmp").mkdir()
    (tmp_path / "archive").mkdir()
    assert [g.name for g in scan_landing(tmp_path)] == ["group1", "group2", "group10"]


def test_fingerprint_changes_when_a_file_is_replaced(tmp_path):
    folder = write_group(tmp_path, "group1", ARRIVAL)
    before = scan_landing(tmp_path)[0].fingerprint
    (folder / "branches_SS_raw_1.csv").write_text(
        "branch_id,location,establish_date,class\nB1,x,2020-01-01,A\n"
    )
    assert scan_landing(tmp_path)[0].fingerprint != before


def test_lake_copy_hashes_counts_records_and_reads_header(tmp_path):
    source = tmp_path / "in.csv"
    body = b"\xef\xbb\xbfa,b\r\n1,2\r\n3,4"  # BOM, CRLF, no final newline
    source.write_bytes(body)
    lake = Lake(str(tmp_path / "lake"))
    copied = lake.copy_in(source, "raw", "x.csv")
    assert (tmp_path / "lake" / "raw" / "x.csv").read_bytes() == body
    assert copied.sha256 == hashlib.sha256(body).hexdigest()
    assert (copied.size, copied.records, copied.header) == (len(body), 3, "a,b")
    assert copied.valid_utf8


def test_lake_copy_finds_invalid_utf8_even_split_across_chunks(tmp_path, monkeypatch):
    import retail_assets.storage.lake as lake_module

    monkeypatch.setattr(lake_module, "COPY_CHUNK", 3)
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes("a,b\nJosé,Zoë €\n".encode())  # multi-byte letters cut by the chunks
    bad.write_bytes("a,b\nJosé,Zoë\n".encode("latin-1"))
    lake = Lake(str(tmp_path / "lake"))
    assert lake.copy_in(good, "g.csv").valid_utf8
    assert not lake.copy_in(bad, "b.csv").valid_utf8


def test_lake_line_count_matches_across_chunk_boundaries(tmp_path, monkeypatch):
    import retail_assets.storage.lake as lake_module

    monkeypatch.setattr(lake_module, "COPY_CHUNK", 3)  # \r and \n of one CRLF in two chunks
    source = tmp_path / "in.csv"
    source.write_bytes(b"ab\r\ncd\r\n\r\nef\rgh\n")
    copied = Lake(str(tmp_path / "lake")).copy_in(source, "y.csv")
    assert copied.records == 5  # ab, cd, (blank), ef, gh


@pytest.mark.parametrize(
    "body, ends",
    [(b"", True), (b"h\r\na\r\n", True), (b"h\ra\r", True), (b"h\na,", False),
     (b'h\na,"x\n"\n', True)],
)  # fmt: skip
def test_the_copy_tells_whether_the_file_ends_with_a_line_break(tmp_path, monkeypatch, body, ends):
    """Checked on the raw bytes, however the chunks cut the file."""
    import retail_assets.storage.lake as lake_module

    monkeypatch.setattr(lake_module, "COPY_CHUNK", 2)
    source = tmp_path / "in.csv"
    source.write_bytes(body)
    assert Lake(str(tmp_path / "lake")).copy_in(source, "y.csv").ends_with_line_break is ends


def test_lake_record_count_agrees_with_python_csv_across_chunks(tmp_path, monkeypatch):
    """Quoted fields may hold commas, quotes and line breaks (RFC 4180); the count must agree
    with Python's csv reader however the chunks cut the file."""
    import retail_assets.storage.lake as lake_module

    rng = random.Random(7)

    def field():
        if rng.random() < 0.5:
            return "".join(rng.choice("ab ") for _ in range(rng.randrange(3)))
        parts = ["a", ",", "\n", "\r\n", '""']
        inside = "".join(rng.choice(parts) for _ in range(rng.randrange(5)))
        return f'"{inside}"'

    terminators = ["\n", "\r\n", "\r"]
    body = "".join(
        ",".join(field() for _ in range(rng.randrange(1, 4))) + rng.choice(terminators)
        for _ in range(300)
    ).encode()
    expected = sum(1 for _ in csv.reader(io.StringIO(body.decode(), newline="")))
    assert expected < body.count(b"\n") + body.count(b"\r") - body.count(b"\r\n")  # some quoted
    source = tmp_path / "in.csv"
    source.write_bytes(body)
    for chunk in (1, 2, 3, 5, 64, 1 << 20):
        monkeypatch.setattr(lake_module, "COPY_CHUNK", chunk)
        assert Lake(str(tmp_path / "lake")).copy_in(source, f"{chunk}.csv").records == expected


def test_lake_json_round_trip_replaces_whole(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_json({"a": 1}, "m", "doc.json")
    lake.write_json({"a": 2}, "m", "doc.json")
    assert lake.read_json("m", "doc.json") == {"a": 2}
    assert lake.read_json("m", "missing.json") is None
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["doc.json"]


def test_a_temporary_a_killed_copy_left_is_removed_by_the_next_copy(tmp_path):
    source = tmp_path / "x.csv"
    source.write_bytes(b"a,b\n1,2\n")
    lake = Lake(str(tmp_path / "lake"))
    stale = tmp_path / "lake" / "raw" / ".x.csv.0123456789abcdef.tmp"  # a copy killed mid-way
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a,b\n1,")
    lake.copy_in(source, "raw", "x.csv")
    assert sorted(p.name for p in stale.parent.iterdir()) == ["x.csv"]
