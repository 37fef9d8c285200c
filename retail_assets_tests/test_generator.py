"""The generator must reproduce the source file contract (docs/rules.md §1), dirt included.

Every check reads the written files, as the pipeline will, rather than the generator's
internals.
"""

import csv
import hashlib
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path

import pytest

from retail_assets.dev.generator import generate

GROUPS = 4  # group3 is the redelivery of group2
REDELIVERED, ORIGINAL = 3, 2
TRANSACTION_HEADER = (
    "transaction_date,transaction_id,customer_id,customer_fname,cusomter_lname,"
    "cusomter_email,sales_agent_id,branch_id,product_id,product_name,product_category,"
    "offer_1,offer_2,offer_3,offer_4,offer_5,units,unit_price,is_online,payment_method,"
    "shipping_address"
)
OFFERS = [f"offer_{k}" for k in range(1, 6)]
# docs/rules.md §1's list, written out here on purpose: the oracle must not import the generator's.
EMAIL_TAILS = {"#4r", ";", "]x", "'", "\\", "|", "^", "[", "&", "}4", "$u", "*", ":", "<", "(", "{", ">", '"', "/", ")x", "%x", " ", "m"}  # fmt: skip  # noqa: E501
CLEAN_EMAIL = re.compile(r"([a-z]+)\.([a-z]+)@(gmail|yahoo|hotmail|outlook)\.com")
UNPADDED_DATE = re.compile(r"\d{4}-[1-9]\d?-[1-9]\d?")


def _file(folder: Path, prefix: str) -> Path:
    (path,) = folder.glob(f"{prefix}*.csv")
    return path


def _rows(folder: Path, prefix: str) -> list[dict[str, str]]:
    """Rows matched to the header by name; a missing trailing field reads as None."""
    with _file(folder, prefix).open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _raw_rows(folder: Path, prefix: str) -> list[list[str]]:
    with _file(folder, prefix).open(newline="", encoding="utf-8") as file:
        return list(csv.reader(file))[1:]


def _digest(root: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(root.rglob("*.csv")):
        sha.update(str(path.relative_to(root)).encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _offer_count(row: dict[str, str]) -> int:
    return sum(row[offer] == "True" for offer in OFFERS)


def _clean(name: str) -> str:
    return name.strip().title()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> list[Path]:
    return generate(tmp_path_factory.mktemp("source"), groups=GROUPS, rows=300, seed=7)


@pytest.fixture(scope="module")
def fresh(folders) -> list[Path]:
    """The groups the source actually generated (the redelivery is a copy)."""
    return [folder for folder in folders if folder.name != f"group{REDELIVERED}"]


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> list[dict[str, str]]:
    """One larger group, for shares and rates."""
    (folder,) = generate(tmp_path_factory.mktemp("big"), groups=1, rows=5000, seed=3)
    return _rows(folder, "sales_transactions")


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def run(name: str, seed: int) -> str:
        generate(tmp_path / name, groups=3, rows=120, seed=seed)
        return _digest(tmp_path / name)

    assert run("a", seed=1) == run("b", seed=1)
    assert run("a", seed=1) != run("c", seed=2)


def test_layout_and_names(folders, tmp_path):
    assert [folder.name for folder in folders] == [f"group{k}" for k in range(1, GROUPS + 1)]
    for k, folder in enumerate(folders, start=1):
        number = ORIGINAL if k == REDELIVERED else k
        assert sorted(path.name for path in folder.iterdir()) == [
            f"branches_SS_raw_{number}.csv",
            f"sales_agents_SS_raw_{number}.csv",
            f"sales_transactions_SS_raw_{number}.csv",
        ]
    assert generate(tmp_path, groups=0, rows=10, seed=1) == []


def test_headers_and_newlines(folders):
    for folder in folders:
        for prefix, header in [
            ("branches", "branch_id,location,establish_date,class"),
            ("sales_agents", "sales_person_id,name,hire_date"),
            ("sales_transactions", TRANSACTION_HEADER),
        ]:
            data = _file(folder, prefix).read_bytes()
            assert data.split(b"\n", 1)[0].decode() == header
            assert b"\r" not in data


def test_redelivered_group_is_byte_identical(folders):
    copy, original = folders[REDELIVERED - 1], folders[ORIGINAL - 1]
    for path in original.iterdir():
        assert (copy / path.name).read_bytes() == path.read_bytes()


def test_ragged_rows_online_and_offline(fresh):
    for folder in fresh:
        rows = _raw_rows(folder, "sales_transactions")
        assert len(rows) == 300
        for row in rows:
            is_online = row[18]
            assert is_online in ("yes", "no")
            if is_online == "yes":
                assert len(row) == 21
                assert row[6] == row[7] == ""
                assert row[19] in ("Credit Card", "PayPal", "Stripe")
                assert len(row[20].split("/")) >= 4
            else:
                assert len(row) == 20
                assert row[6] and row[7]
                assert row[19] in ("Cash", "Credit Card")


def test_offline_rows_have_no_trailing_comma(fresh):
    text = _file(fresh[0], "sales_transactions").read_text(encoding="utf-8")
    offline = [line for line in text.splitlines() if line.endswith((",no,Cash", ",no,Credit Card"))]
    assert offline


def test_shipping_addresses(fresh):
    for folder in fresh:
        addresses = [
            row["shipping_address"]
            for row in _rows(folder, "sales_transactions")
            if row["is_online"] == "yes"
        ]
        streets = [address.rsplit("/", 3)[0] for address in addresses]
        postals = [address.rsplit("/", 1)[1] for address in addresses]
        assert any("/" in street for street in streets)
        assert any(postal.startswith("0") for postal in postals)
        assert all(re.fullmatch(r"\d{5}", postal) for postal in postals)
        assert all(re.fullmatch(r"[A-Z]{2}", address.rsplit("/", 2)[1]) for address in addresses)


def test_every_email_has_a_junk_tail_and_all_tails_appear(fresh):
    for folder in fresh:
        tails = set()
        for row in _rows(folder, "sales_transactions"):
            email = row["cusomter_email"]
            match = CLEAN_EMAIL.match(email)
            assert match, email
            assert match.groups()[:2] == (
                row["customer_fname"].strip().lower(),
                row["cusomter_lname"].strip().lower(),
            )
            tails.add(email[match.end() :])
        assert tails == EMAIL_TAILS
    assert re.search(r'\.com"""', _file(fresh[0], "sales_transactions").read_text())


def test_names_are_dirty(big):
    names = [row[column] for row in big for column in ("customer_fname", "cusomter_lname")]
    assert any(name.islower() for name in names)
    assert any(name.isupper() for name in names)
    assert any(name != name.strip() for name in names)
    assert any(name == name.strip().title() for name in names)


def test_offers_dates_units_prices(big):
    good = [
        row
        for row in big
        if _offer_count(row) <= 1 and _is_date(row["transaction_date"]) and int(row["units"]) > 0
    ]
    assert all(row[offer] in ("True", "") for row in big for offer in OFFERS)
    assert 0.4 < sum(_offer_count(row) == 1 for row in good) / len(good) < 0.6
    assert all(UNPADDED_DATE.fullmatch(row["transaction_date"]) for row in good)
    days = [datetime.strptime(row["transaction_date"], "%Y-%m-%d").date() for row in good]
    assert min(days) < date(2022, 2, 1) and max(days) > date(2023, 12, 1)
    assert max(days) <= date(2023, 12, 31)
    assert {row["units"] for row in good} == {str(n) for n in range(1, 11)}
    assert all(re.fullmatch(r"\d+\.\d\d", row["unit_price"]) for row in big)
    assert 0.28 < sum(row["is_online"] == "yes" for row in big) / len(big) < 0.39


def test_products_are_their_ids(big):
    products = {
        (row["product_id"], row["product_name"], row["product_category"], row["unit_price"])
        for row in big
    }
    ids = Counter(product_id for product_id, *_ in products)
    assert max(ids.values()) == 1
    assert 25 <= len(products) <= 35
    assert len({category for _, _, category, _ in products}) == 4
    by_name = defaultdict(set)
    for _, name, _, price in products:
        by_name[name].add(price)
    assert sorted(len(prices) for prices in by_name.values() if len(prices) > 1) == [2, 2]


def test_transaction_ids_unique_across_groups(fresh):
    ids = [row["transaction_id"] for folder in fresh for row in _rows(folder, "sales_transactions")]
    assert all(transaction_id.isdigit() for transaction_id in ids)
    assert len(set(ids)) == len(ids)


def test_bad_rows_appear_in_every_group_and_are_rare(fresh, big):
    for folder in fresh:
        rows = _rows(folder, "sales_transactions")
        assert any(_offer_count(row) == 2 for row in rows)
        assert any(int(row["units"]) <= 0 for row in rows)
        assert any(not _is_date(row["transaction_date"]) for row in rows)
    bad = [
        row
        for row in big
        if _offer_count(row) > 1 or int(row["units"]) <= 0 or not _is_date(row["transaction_date"])
    ]
    assert 3 <= len(bad) <= 25


def test_customers_per_group_and_name_changes(fresh, big):
    assert 90 <= len({row["customer_id"] for row in big}) <= 110
    names_by_group = []
    for folder in fresh:
        names = defaultdict(set)
        for row in _rows(folder, "sales_transactions"):
            names[row["customer_id"]].add(
                (_clean(row["customer_fname"]), _clean(row["cusomter_lname"]))
            )
        assert all(len(variants) == 1 for variants in names.values())
        names_by_group.append({key: variants.pop() for key, variants in names.items()})
    changed = [
        customer_id
        for earlier, later in pairwise(names_by_group)
        for customer_id in earlier.keys() & later.keys()
        if earlier[customer_id] != later[customer_id]
    ]
    assert changed


def test_dimension_files(folders):
    for folder in folders:
        branches = _rows(folder, "branches")
        agents = _rows(folder, "sales_agents")
        assert all(
            date.fromisoformat(row["establish_date"]).isoformat() == row["establish_date"]
            for row in branches
        )
        assert all(row["class"] in ("A", "B", "C") for row in branches)
        assert all(UNPADDED_DATE.fullmatch(row["hire_date"]) for row in agents)
    last_branches, last_agents = _rows(folders[-1], "branches"), _rows(folders[-1], "sales_agents")
    assert 8 <= len(last_branches) <= 12
    assert 15 <= len(last_agents) <= 25


def test_agent_hire_date_changes(folders):
    first = {row["sales_person_id"]: row["hire_date"] for row in _rows(folders[0], "sales_agents")}
    last = {row["sales_person_id"]: row["hire_date"] for row in _rows(folders[-1], "sales_agents")}
    assert any(last[agent] != hire_date for agent, hire_date in first.items())


def test_branch_and_agent_announced_late(folders):
    for prefix, id_column, used_column in [
        ("branches", "branch_id", "branch_id"),
        ("sales_agents", "sales_person_id", "sales_agent_id"),
    ]:
        announced = [{row[id_column] for row in _rows(folder, prefix)} for folder in folders]
        used = [
            {row[used_column] for row in _rows(folder, "sales_transactions")} - {""}
            for folder in folders
        ]
        late = used[0] - announced[0]
        assert late and late <= announced[1]
        assert all(known <= later for known, later in pairwise(announced))
        assert set().union(*used) <= announced[-1]
