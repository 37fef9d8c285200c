"""Small builders shared by the tests: source groups written like the source system does."""

import csv
import os
import re
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from retail_assets.landing import FILE_KINDS

HEADERS = {
    "branches": "branch_id,location,establish_date,class",
    "sales_agents": "sales_person_id,name,hire_date",
    "sales_transactions": (
        "transaction_date,transaction_id,customer_id,customer_fname,cusomter_lname,"
        "cusomter_email,sales_agent_id,branch_id,product_id,product_name,product_category,"
        "offer_1,offer_2,offer_3,offer_4,offer_5,units,unit_price,is_online,payment_method,"
        "shipping_address"
    ),
}


def write_group(
    landing: Path,
    name: str,
    arrival: datetime,
    transactions: bytes | None = None,
    skip: tuple[str, ...] = (),
) -> Path:
    """A group folder with the three files (minus `skip`), stamped as arrived at `arrival`."""
    folder = landing / name
    folder.mkdir(parents=True)
    number = name.removeprefix("group")
    for kind in FILE_KINDS:
        if kind in skip:
            continue
        body = HEADERS[kind].encode() + b"\n"
        if kind == "sales_transactions" and transactions is not None:
            body = transactions
        path = folder / f"{kind}_SS_raw_{number}.csv"
        path.write_bytes(body)
        os.utime(path, (arrival.timestamp(), arrival.timestamp()))
    return folder


def valid_rows(path: Path) -> list[dict]:
    """The transactions of a source file that SPEC.md §2 keeps, cleaned — computed here with
    the csv module and Decimal, independently of the Spark transforms under test."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            offers = [k for k in range(1, 6) if row[f"offer_{k}"] == "True"]
            try:
                date = datetime.strptime(row["transaction_date"], "%Y-%m-%d").date()
            except ValueError:
                continue
            units = int(row["units"])
            if len(offers) > 1 or units <= 0:
                continue
            discount = 5 * offers[0] if offers else 0
            total = (units * Decimal(row["unit_price"]) * (100 - discount) / 100).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            email = re.match(r"[^@]+@[a-z0-9.-]+", row["cusomter_email"].strip().lower())[0]
            email = email[:-1] if email.endswith(".comm") else email
            address = (row.get("shipping_address") or "").rsplit("/", 3)
            city, postal = (address[1], address[3]) if len(address) == 4 else (None, None)
            rows.append({
                "transaction_id": row["transaction_id"], "line": line, "date": date,
                "online": row["is_online"] == "yes", "customer_id": row["customer_id"],
                "first_name": row["customer_fname"].strip().title(),
                "last_name": row["cusomter_lname"].strip().title(), "email": email,
                "product_id": row["product_id"], "branch_id": row["branch_id"] or None,
                "sales_agent_id": row["sales_agent_id"] or None, "units": units,
                "product_name": row["product_name"], "total": total, "city": city,
                "postal": postal,
            })  # fmt: skip
    return rows


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))
