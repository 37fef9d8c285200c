"""The JVM side's lock (jvm/pom.xml): in step with pyspark, fetched by mvn, clear when it
cannot be."""

import pyspark
import pytest

from retail_assets.servers import jars
from retail_assets.servers.supervisor import ServiceError


def test_spark_kafka_connector_is_of_pysparks_release_line():
    """The connector runs inside the Connect server: the same Spark 4.0.x line (the exact
    patch when Maven Central serves all of it; jvm/pom.xml says why it is 4.0.0 today)."""
    connector = jars.pinned("spark-kafka")
    spark = connector["spark-sql-kafka-0-10_2.13"]
    assert spark.split(".")[:2] == pyspark.__version__.split(".")[:2], (spark, pyspark.__version__)
    assert connector["spark-token-provider-kafka-0-10_2.13"] == spark


def test_delta_lake_is_the_release_for_pysparks_line():
    """Delta Lake runs inside Spark's own planner: Delta 4.0.x is built for Spark 4.0.x
    (docs.delta.io, releases), and its storage jar is of the same release."""
    delta = jars.pinned("delta")
    spark = delta["delta-spark_2.13"]
    assert spark.split(".")[:2] == pyspark.__version__.split(".")[:2], (spark, pyspark.__version__)
    assert delta["delta-storage"] == spark


def test_a_set_missing_a_pinned_jar_is_fetched(tmp_path, monkeypatch):
    monkeypatch.delenv("RETAIL_JARS_DIR", raising=False)
    driver = jars.jar_name("metastore-jdbc", "postgresql")
    assert jars.missing(tmp_path, "metastore-jdbc") == [driver]
    folder = jars.ensure(tmp_path, "metastore-jdbc")
    assert (folder / driver).stat().st_size > 500_000
    assert [p.name for p in folder.parent.iterdir()] == ["metastore-jdbc"]  # that set only
    assert jars.missing(tmp_path, "metastore-jdbc") == []
    (folder / driver).unlink()
    assert jars.missing(tmp_path, "metastore-jdbc") == [driver]


def test_maven_central_unreachable_is_one_line_with_the_fix(tmp_path, monkeypatch):
    unreachable = tmp_path / "settings.xml"
    unreachable.write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        "<url>http://127.0.0.1:9/maven2</url></mirror></mirrors></settings>"
    )
    monkeypatch.setattr(jars, "MAVEN_SETTINGS", unreachable)
    monkeypatch.setenv("MAVEN_OPTS", f"-Dmaven.repo.local={tmp_path / 'empty-m2'}")
    monkeypatch.delenv("RETAIL_JARS_DIR", raising=False)
    with pytest.raises(ServiceError) as refused:
        jars.ensure(tmp_path / "home", "metastore-jdbc")
    message = str(refused.value)
    assert "\n" not in message and "could not fetch the pinned jars" in message
    assert "retail jars" in message and "127.0.0.1:9" in message, message
