"""raw_files + silver_transactions through Dagster on the session's Spark server.

Expected values are computed here independently with the csv module and Decimal, not by the
transforms under test.
"""

import os
from datetime import UTC, datetime, timedelta

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, materialize

from retail_assets.assets.raw import raw_files
from retail_assets.assets.silver import new_transactions, silver_transactions
from retail_assets.definitions import batch_definitions
from retail_assets.dev.generator import generate
from retail_assets.dev.replay import land
from retail_assets.resources import spark_resource
from retail_assets.storage.hours import hour_path, key_of
from retail_assets_tests.helpers import (
    HEADERS,
    make_storage,
    read_csv_rows,
    valid_rows,
    write_group,
)

START = datetime(2025, 3, 1, 0, tzinfo=UTC)
GOOD = (
    "2023-5-20,{tid},c1,john,wick,john.wick@gmail.com#4r,a1,b1,p1,Phone,Electronics,"
    ",True,,,,3,19.99,no,Cash"
)


def good_rows(*tids) -> str:
    return "\n".join(GOOD.format(tid=tid) for tid in tids)


def good_rows_file(*tids) -> bytes:
    return (HEADERS["sales_transactions"] + "\n" + good_rows(*tids) + "\n").encode()


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return make_storage(tmp_path_factory.mktemp("pipeline"), "pipeline")


def run_hours(spark, settings, storage, keys):
    """Materialize raw + silver for each hour, as the hourly job does; returns the results."""
    resources = {"spark": spark_resource(settings), "storage": storage}
    results = []
    with DagsterInstance.ephemeral() as instance:
        for key in keys:
            result = materialize(
                [raw_files, silver_transactions],
                partition_key=key,
                resources=resources,
                instance=instance,
            )
            assert result.success
            results.append(result)
    return results


def silver_of(spark, storage, key):
    return storage.lake_table("silver", "transactions").hour(spark, key)


def quarantine_of(spark, storage, key):
    return storage.lake_table("quarantine", "transactions").hour(spark, key)


def sorted_rows(frame):
    return sorted(tuple(row) for row in frame.collect())


def expected_silver(path) -> dict[str, tuple]:
    """transaction_id -> (total_paid_price, email, first name, city, postal)."""
    return {
        r["transaction_id"]: (r["total"], r["email"], r["first_name"], r["city"], r["postal"])
        for r in valid_rows(path)
    }


@pytest.fixture(scope="module")
def generated(spark, settings, storage, tmp_path_factory):
    source = tmp_path_factory.mktemp("source")
    groups = generate(source, groups=3, rows=400, seed=11)
    keys = []
    for index, group in enumerate(groups):
        arrival = START + timedelta(hours=index)
        land(group, storage.landing_dir_path, arrival)
        keys.append(key_of(arrival))
    run_hours(spark, settings, storage, keys)
    return groups, keys


def test_each_hour_reconciles_with_the_source_files(spark, storage, generated):
    groups, keys = generated
    for group, key in zip(groups, keys, strict=True):
        (source,) = group.glob("sales_transactions*.csv")
        raw_lines = source.read_bytes().count(b"\n") - 1
        silver, quarantine = silver_of(spark, storage, key), quarantine_of(spark, storage, key)
        assert silver.count() + quarantine.count() == raw_lines
        manifest = storage.raw_manifest(key)
        assert [g["group"] for g in manifest["groups"]] == [group.name]
        assert manifest["groups"][0]["files"]["sales_transactions"]["rows"] == raw_lines


def test_silver_values_match_an_independent_computation(spark, storage, generated):
    groups, keys = generated
    for group, key in zip(groups, keys, strict=True):
        (source,) = group.glob("sales_transactions*.csv")
        rows = (
            silver_of(spark, storage, key)
            .select(
                "transaction_id",
                "total_paid_price",
                "customer_email",
                "customer_fname",
                "city",
                "postal_code",
            )
            .collect()
        )
        assert {r[0]: tuple(r[1:]) for r in rows} == expected_silver(source)


def expected_quarantine(path) -> dict[int, str]:
    """source line -> reason of every row the oracle does not keep, by docs/rules.md §2.10's
    order, for the rules a generated file breaks; any other dropped row fails the test."""
    kept = {r["line"] for r in valid_rows(path)}
    reasons = {}
    for line, row in enumerate(read_csv_rows(path), start=2):
        if line in kept:
            continue
        try:
            datetime.strptime(row["transaction_date"], "%Y-%m-%d")
        except ValueError:
            reasons[line] = "bad_transaction_date"
            continue
        if int(row["units"]) <= 0:
            reasons[line] = "non_positive_units"
        elif sum(row[f"offer_{k}"] == "True" for k in range(1, 6)) > 1:
            reasons[line] = "multiple_offers"
        else:
            raise AssertionError(f"{path.name}:{line} is dropped for a reason the oracle lacks")
    return reasons


def test_quarantine_holds_each_bad_row_with_the_first_rule_it_breaks(spark, storage, generated):
    groups, keys = generated
    for group, key in zip(groups, keys, strict=True):
        (source,) = group.glob("sales_transactions*.csv")
        rows = quarantine_of(spark, storage, key).collect()
        expected = expected_quarantine(source)
        assert expected  # the generator's dirt is in every hour
        assert {r.source_line: r.reason for r in rows} == expected


def test_rerunning_an_hour_leaves_identical_silver(spark, settings, storage, generated):
    _, keys = generated
    before = sorted_rows(silver_of(spark, storage, keys[1]))
    quarantined = sorted_rows(quarantine_of(spark, storage, keys[1]))
    run_hours(spark, settings, storage, [keys[1]])
    assert sorted_rows(silver_of(spark, storage, keys[1])) == before
    assert sorted_rows(quarantine_of(spark, storage, keys[1])) == quarantined
    assert len(storage.raw_manifest(keys[1])["groups"]) == 1


def test_silver_table_is_in_the_metastore(spark, storage, generated):
    _, keys = generated
    table = storage.lake_table("silver", "transactions").name
    partitions = {r[0] for r in spark.sql(f"SHOW PARTITIONS {table}").collect()}
    assert {f"{hour_path(k)}" for k in keys} <= partitions


# ---------------------------------------------------------------- bad input, one hour each

BAD_START = datetime(2025, 4, 1, 0, tzinfo=UTC)
BAD_GROUPS = {
    "group101": HEADERS["sales_transactions"].encode() + b"\n",  # header only
    "group102": b"",  # empty file
    "group103": (HEADERS["sales_transactions"] + "\n" + good_rows(1, 2)).encode()
    + b"\n"
    + GOOD.format(tid=3).replace("john", "jo\xe9n").encode("latin-1")
    + b"\n",
    "group104": (
        HEADERS["sales_transactions"] + "\r\n" + good_rows(1, 2).replace("\n", "\r\n") + "\r\n"
    ).encode(),
    "group105": b"\xef\xbb\xbf" + good_rows_file(1, 2),
    "group106": (
        HEADERS["sales_transactions"]
        + ",loyalty_tier\n"
        + good_rows(1, 2).replace("Cash", "Cash,,gold")
        + "\n"
    ).encode(),
    "group107": (
        HEADERS["sales_transactions"].replace("units,", "")
        + "\n"
        + good_rows(1, 2).replace(",3,19.99", ",19.99")
        + "\n"
    ).encode(),
    "group108": (  # another delimiter: nothing of the header is recognized
        HEADERS["sales_transactions"].replace(",", ";")
        + "\n"
        + good_rows(1, 2).replace(",", ";")
        + "\n"
    ).encode(),
    "group109": (  # RFC 4180: a quoted address holding a comma, a quote and a line break
        HEADERS["sales_transactions"]
        + "\n"
        + GOOD.format(tid=1).replace(",True,", ",,").replace("no,Cash", "yes,PayPal")
        + ',"12 Elm St, ""Rear"" Apt 4\nFloor 2/Springfield/IL/62701"\n'
        + good_rows(2)
        + "\n"
    ).encode(),
    "group110": (
        HEADERS["sales_transactions"]
        + "\n"
        + good_rows(1)
        + "\n"
        + GOOD.format(tid=2).replace("2023-5-20", "2099-1-1")
        + "\n"
    ).encode(),
    # The header again mid-file (files concatenated), then a last record cut off inside its
    # postal code (the writer died): no line break at the end of the file.
    "group113": (
        "\n".join([HEADERS["sales_transactions"], good_rows(1), HEADERS["sales_transactions"]])
        + "\n"
        + good_rows(2)
        + "\n"
        + GOOD.format(tid=3).replace(",True,", ",,").replace("no,Cash", "yes,PayPal")
        + ",12 Elm St/Springfield/CA/92"
    ).encode(),
}
OTHER_FILES = {  # every file kind gets the same encoding and emptiness treatment
    "group111": {
        "sales_agents": (HEADERS["sales_agents"] + "\na1,Jos\xe9 Ruiz,2020-1-2\n").encode("latin-1")
    },
    "group112": {"branches": b""},
}


@pytest.fixture(scope="module")
def bad(spark, settings, storage):
    hours = {}
    for index, name in enumerate([*BAD_GROUPS, *OTHER_FILES]):
        arrival = BAD_START + timedelta(hours=index)
        bodies = OTHER_FILES.get(name, {"sales_transactions": BAD_GROUPS.get(name)})
        transactions = bodies.get("sales_transactions", good_rows_file(1))
        write_group(storage.landing_dir_path, name, arrival, transactions, bodies=bodies)
        hours[name] = key_of(arrival)
    results = dict(zip(hours, run_hours(spark, settings, storage, hours.values()), strict=True))
    return hours, results


def outcome(spark, storage, bad, name):
    hours, _ = bad
    key = hours[name]
    quarantine = quarantine_of(spark, storage, key).collect()
    return silver_of(spark, storage, key).count(), sorted(
        (q.source_line, q.reason) for q in quarantine
    )


def check_of(bad, name, check):
    """(passed, severity name, description) of one asset check in group `name`'s run."""
    _, results = bad
    (evaluation,) = [
        e.event_specific_data
        for e in results[name].all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == check
    ]
    return evaluation.passed, evaluation.severity.value, evaluation.description or ""


def silver_metadata(bad, name):
    _, results = bad
    (event,) = results[name].asset_materializations_for_node("silver_transactions")
    return {k: v.value for k, v in event.metadata.items()}


def test_header_only_file_gives_an_empty_hour(spark, storage, bad):
    assert outcome(spark, storage, bad, "group101") == (0, [])


def test_empty_file_is_kept_and_gives_an_empty_hour(spark, storage, bad):
    hours, _ = bad
    assert outcome(spark, storage, bad, "group102") == (0, [])
    entry = storage.raw_manifest(hours["group102"])["groups"][0]["files"]
    assert entry["sales_transactions"]["empty"] is True
    lake_file = entry["sales_transactions"]["lake_file"]
    assert storage.lake.exists("raw", hour_path(hours["group102"]), lake_file)


def test_non_utf8_row_is_quarantined_alone(spark, storage, bad):
    assert outcome(spark, storage, bad, "group103") == (2, [(4, "invalid_encoding")])


def test_crlf_line_endings(spark, storage, bad):
    hours, _ = bad
    assert outcome(spark, storage, bad, "group104") == (2, [])
    rows = silver_of(spark, storage, hours["group104"]).collect()
    assert sorted(r.source_line for r in rows) == [2, 3]
    assert all(r.payment_method == "Cash" for r in rows)


def test_utf8_bom(spark, storage, bad):
    assert outcome(spark, storage, bad, "group105") == (2, [])


def test_unknown_extra_column_is_ignored_and_reported(spark, storage, bad):
    assert outcome(spark, storage, bad, "group106") == (2, [])
    assert silver_metadata(bad, "group106")["unknown_columns"] == ["loyalty_tier"]


def test_missing_required_column_quarantines_the_file_rows(spark, storage, bad):
    assert outcome(spark, storage, bad, "group107") == (
        0,
        [(2, "missing_columns"), (3, "missing_columns")],
    )
    metadata = silver_metadata(bad, "group107")
    assert (metadata["raw_rows"], metadata["quarantined_rows"]) == (2, 2)


def test_clean_files_pass_the_file_check(bad):
    for name in ("group101", "group104", "group105", "group106", "group109"):
        passed, _, description = check_of(bad, name, "files_readable")
        assert (passed, description) == (True, ""), name
        assert check_of(bad, name, "rows_usable")[0], name


def test_empty_or_non_utf8_file_of_any_kind_is_a_warning_naming_it(bad):
    hours, _ = bad
    for name, kind, words in [
        ("group102", "sales_transactions", "is empty"),
        ("group103", "sales_transactions", "not UTF-8"),
        ("group111", "sales_agents", "not UTF-8"),
        ("group112", "branches", "is empty"),
    ]:
        passed, severity, description = check_of(bad, name, "files_readable")
        assert (passed, severity) == (False, "WARN"), name
        assert f"{kind}_{hours[name][:10]}" in description and words in description, description


def test_unrecognized_header_fails_the_hour_and_all_quarantined_is_an_error(spark, storage, bad):
    assert outcome(spark, storage, bad, "group108") == (
        0,
        [(2, "missing_columns"), (3, "missing_columns")],
    )
    passed, severity, description = check_of(bad, "group108", "files_readable")
    assert (passed, severity) == (False, "ERROR")
    assert "header not recognized" in description and "transaction_id" in description
    passed, severity, description = check_of(bad, "group108", "rows_usable")
    assert (passed, severity) == (False, "ERROR") and "missing_columns" in description
    assert check_of(bad, "group107", "rows_usable")[0] is False  # a missing column, too


def test_a_record_cut_off_at_the_end_of_its_file_is_quarantined_and_the_file_named(
    spark, storage, bad
):
    """The last record of a file without a final line break may be cut (here its postal code
    92027 arrived as 92): it is quarantined, never loaded, and files_readable says why. A
    header line met again mid-file is quarantined with its own reason."""
    hours, _ = bad
    assert outcome(spark, storage, bad, "group113") == (
        2,
        [(3, "repeated_header"), (5, "truncated_record")],
    )
    passed, severity, description = check_of(bad, "group113", "files_readable")
    assert (passed, severity) == (False, "WARN")
    assert f"sales_transactions_{hours['group113'][:10]}" in description
    assert "does not end with a line break" in description
    assert silver_metadata(bad, "group113")["raw_rows"] == 4  # every record counted


def test_quoted_line_break_keeps_the_online_sale_whole(spark, storage, bad):
    hours, _ = bad
    assert outcome(spark, storage, bad, "group109") == (2, [])
    rows = {r.transaction_id: r for r in silver_of(spark, storage, hours["group109"]).collect()}
    assert (rows["1"].street, rows["1"].city, rows["1"].postal_code, rows["1"].source_line) == (
        '12 Elm St, "Rear" Apt 4\nFloor 2',
        "Springfield",
        "62701",
        2,
    )
    assert rows["2"].source_line == 4
    assert silver_metadata(bad, "group109")["raw_rows"] == 2  # records, not lines


def test_a_sale_dated_after_its_arrival_is_quarantined(spark, storage, bad):
    assert outcome(spark, storage, bad, "group110") == (1, [(3, "future_transaction_date")])


def test_incomplete_and_outside_groups_are_not_ingested(spark, settings, storage, tmp_path):
    arrival = BAD_START + timedelta(hours=20)
    write_group(storage.landing_dir_path, "group120", arrival, skip=("branches",))
    outside = write_group(tmp_path, "group121", arrival)
    (storage.landing_dir_path / "group121").symlink_to(outside)
    write_group(
        storage.landing_dir_path,
        "group122",
        arrival,
        transactions=good_rows_file(7),
    )
    run_hours(spark, settings, storage, [key_of(arrival)])
    manifest = storage.raw_manifest(key_of(arrival))
    assert [g["group"] for g in manifest["groups"]] == ["group122"]
    assert silver_of(spark, storage, key_of(arrival)).count() == 1


def test_resent_ids_whose_content_differs_are_reported_apart_from_exact_duplicates(
    spark, settings, storage
):
    """First arrival wins either way; a re-send that disagrees with it (other units) is named
    by a warning check, across hours and within one, an identical re-send is not."""
    other_units = GOOD.replace(",3,19.99", ",4,19.99")
    first, again = BAD_START + timedelta(hours=40), BAD_START + timedelta(hours=41)
    write_group(storage.landing_dir_path, "group130", first, good_rows_file(201, 202))
    resent = [GOOD.format(tid=201), other_units.format(tid=202), GOOD.format(tid=203),
              other_units.format(tid=203), GOOD.format(tid=204), GOOD.format(tid=204)]  # fmt: skip
    body = "\n".join([HEADERS["sales_transactions"], *resent]) + "\n"
    write_group(storage.landing_dir_path, "group131", again, body.encode())
    resources = {"spark": spark_resource(settings), "storage": storage}
    with DagsterInstance.ephemeral() as instance:
        for arrival in (first, again):
            result = materialize(
                [raw_files, silver_transactions, new_transactions],
                partition_key=key_of(arrival),
                resources=resources,
                instance=instance,
            )
    assert result.success
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == "resent_transactions_agree"
    ]
    assert (evaluation.passed, evaluation.severity.value) == (False, "WARN")
    assert "2 re-sent transaction id(s)" in evaluation.description
    assert evaluation.metadata["examples"].value == ["202", "203"]
    (event,) = result.asset_materializations_for_node("new_transactions")
    assert event.metadata["duplicate_rows"].value == 4  # 201, 202, 203 again, 204 again
    new = storage.lake_table("silver", "new_transactions").hour(spark, key_of(again))
    assert sorted((r.transaction_id, r.units) for r in new.collect()) == [("203", 3), ("204", 3)]


def test_a_group_is_never_ingested_twice(spark, settings, storage, bad):
    hours, _ = bad
    folder = storage.landing_dir_path / "group105"
    later = BAD_START + timedelta(hours=30)
    for file in folder.iterdir():  # dropped again: same name, arriving in a later hour
        file.write_bytes(file.read_bytes())
        os.utime(file, (later.timestamp(), later.timestamp()))
    run_hours(spark, settings, storage, [key_of(later), hours["group105"]])
    assert storage.raw_manifest(key_of(later))["groups"] == []
    assert [g["group"] for g in storage.raw_manifest(hours["group105"])["groups"]] == ["group105"]
    assert outcome(spark, storage, bad, "group105") == (2, [])


def test_a_group_folder_renamed_after_its_ingestion_adds_nothing(spark, settings, tmp_path):
    storage = make_storage(tmp_path, "renamed")
    arrival = BAD_START + timedelta(hours=40)
    folder = write_group(storage.landing_dir_path, "group130", arrival,
                         transactions=good_rows_file(1, 2, 3))  # fmt: skip
    key = key_of(arrival)
    run_hours(spark, settings, storage, [key])
    folder.rename(folder.with_name("group131"))  # the same files under a new folder name
    run_hours(spark, settings, storage, [key])  # a re-run of its hour (a backfill, say)
    assert [g["group"] for g in storage.raw_manifest(key)["groups"]] == ["group130"]
    assert silver_of(spark, storage, key).count() == 3


def test_other_hours_unharmed_by_bad_ones(spark, storage, bad, generated):
    _, keys = generated
    (source,) = generated[0][0].glob("sales_transactions*.csv")
    assert silver_of(spark, storage, keys[0]).count() == len(expected_silver(source))


def test_a_failed_reconciliation_stops_the_warehouse_load(spark, settings, tmp_path):
    """raw_rows_reconcile is blocking: an hour whose raw rows do not add up (here the manifest
    claims one row more than the files hold) gets no facts, no insights and no B2B file."""
    storage = make_storage(tmp_path, "blocking")
    (group,) = generate(tmp_path / "source", groups=1, rows=100, seed=3)
    arrival = datetime(2025, 5, 1, 0, tzinfo=UTC)
    land(group, storage.landing_dir_path, arrival)
    key = key_of(arrival)
    resources = {"spark": spark_resource(settings), "storage": storage}
    assert materialize([raw_files], partition_key=key, resources=resources).success
    manifest = storage.raw_manifest(key)
    manifest["groups"][0]["files"]["sales_transactions"]["rows"] += 1
    storage.write_raw_manifest(manifest)

    job = batch_definitions(storage, settings).resolve_job_def("hourly_pipeline")
    after_raw = [k for k in job.asset_layer.executable_asset_keys if k != AssetKey("raw_files")]
    result = job.execute_in_process(partition_key=key, asset_selection=after_raw,
                                    raise_on_error=False)  # fmt: skip
    assert not result.success
    checks = {e.event_specific_data.check_name: e.event_specific_data.passed
              for e in result.all_events
              if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION}  # fmt: skip
    assert checks == {"raw_rows_reconcile": False, "rows_usable": True}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"silver_transactions"}
