"""Small builders shared by the tests: source groups written like the source system does."""

import os
from datetime import datetime
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
