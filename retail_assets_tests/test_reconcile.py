"""The reconciliation's arithmetic (transforms/reconcile.py), used by silver and the facts."""

from retail_assets.transforms.reconcile import duplicates, reconciles


def test_every_raw_row_is_accounted_for_once():
    assert reconciles(100, 90, 10)  # silver + quarantined
    assert reconciles(100, 60, 25, duplicates(silver=90, new=85), 10)  # facts + dups + quarantined
    assert not reconciles(100, 90, 9)  # a row lost
    assert not reconciles(100, 60, 25, duplicates(silver=90, new=80), 10)  # a row counted twice
