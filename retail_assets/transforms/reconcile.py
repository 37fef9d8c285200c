"""Every raw row of an hour is accounted for, once (docs/rules.md §2.10):

    raw rows = silver rows + quarantined rows                     (on silver_transactions)
    raw rows = rows of both facts + duplicates + quarantined rows (on fact_branch_sales)

where a duplicate is a silver row whose transaction_id arrived before (§2.8). Both are the one
check `raw_rows_reconcile`.
"""

CHECK = "raw_rows_reconcile"


def duplicates(silver: int, new: int) -> int:
    """Silver rows that are not first arrivals."""
    return silver - new


def reconciles(raw: int, *accounted: int) -> bool:
    """Whether the accounted rows add up to the raw rows."""
    return sum(accounted) == raw
