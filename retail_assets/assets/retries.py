"""Retry what a retry can fix: a Spark server that went away or restarted, a broker briefly
unreachable. A data error or a bug fails the step at once: a retry would fail the same way,
only later, and bury the first failure under three more.

Every asset of the project is declared through `retried`: it gets `TRANSIENT_RETRY` and runs
inside `final_unless_transient`: a server's absence becomes a `Failure` naming the server and
its recovery command (and the policy retries it); any other error becomes a `Failure` that
bypasses the policy. The Spark server the project runs itself is started again by the
retry's own session (`resources.connect`), so waiting for it would only be waiting: that retry
comes at once.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator

from dagster import Backoff, Failure, Jitter, RetryPolicy, RetryRequested

from retail_assets.assets.catalog import linked_to_source
from retail_assets.resources import KafkaResource, SparkResource

# 20 s, 40 s, 80 s after the client's own wait (resources.ClientRetries): time for a server
# to restart (our own Spark server is restarted by the retry, which comes at once).
TRANSIENT_RETRY = RetryPolicy(
    max_retries=3, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)

# Words in an error that say a server, not the data, is the problem.
_SPARK_AWAY = (
    "StatusCode.UNAVAILABLE",
    "SESSION_CHANGED",
    "SESSION_NOT_FOUND",
    "create a new Spark Session to reconnect",
    "Could not connect to meta store",  # the server's metastore service
)
_KAFKA_AWAY = ("org.apache.kafka.common.errors.TimeoutException", "_ALL_BROKERS_DOWN")


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        suppressed = error.__suppress_context__  # `raise … from None`: cut on purpose
        error = error.__cause__ or (None if suppressed else error.__context__)


def server_away(error: BaseException) -> type | None:
    """The resource class whose server `error` (or one it came from) says was away, else
    None: the data or the code was wrong."""
    from confluent_kafka import KafkaError, KafkaException
    from pyspark.errors import RetriesExceeded

    for cause in _chain(error):
        text = str(cause)
        kafka_error = cause.args[0] if isinstance(cause, KafkaException) and cause.args else None
        if isinstance(kafka_error, KafkaError) and kafka_error.retriable():
            return KafkaResource
        if any(word in text for word in _KAFKA_AWAY):
            return KafkaResource
        if isinstance(cause, RetriesExceeded) or any(word in text for word in _SPARK_AWAY):
            return SparkResource
    return None


def first_line(text: str) -> str:
    """The first line with words in it (Spark's errors carry a JVM trace below it)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def one_line(error: BaseException) -> str:
    """An error in one line: its type and first line."""
    first = first_line(str(error))
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


@contextlib.contextmanager
def _final_unless_transient(resources: dict) -> Iterator[None]:
    try:
        yield
    except Failure as failure:  # raised on purpose: a verdict on the data
        failure.allow_retries = False
        raise
    except Exception as error:
        kind = server_away(error)
        if kind is None:
            raise Failure(one_line(error), allow_retries=False) from error
        away = [r for r in resources.values() if isinstance(r, kind)]
        told = "; ".join(r.went_away() for r in away) or one_line(error)
        failure = Failure(f"{told} ({one_line(error)})")
        # Not the local broker: it is started at the resource's set-up, once per run (the
        # jobs run in process), so a retry within the run waits for it like for any broker.
        if kind is SparkResource and away and all(r.restarts_on_retry for r in away):
            failure.__cause__ = error
            raise RetryRequested(TRANSIENT_RETRY.max_retries, seconds_to_wait=0) from failure
        raise failure from error


def final_unless_transient(compute):
    """Wrap an asset's compute function (plain or generator) with the rule above."""
    if inspect.isgeneratorfunction(compute):

        @functools.wraps(compute)
        def generate(*args, **resources):
            with _final_unless_transient(resources):
                yield from compute(*args, **resources)

        return generate

    @functools.wraps(compute)
    def run(*args, **resources):
        with _final_unless_transient(resources):
            return compute(*args, **resources)

    return run


def retried(decorator, **kwargs):
    """`decorator(**kwargs)` (@asset, @multi_asset) with `TRANSIENT_RETRY` and its compute
    function inside `final_unless_transient`; the UI links to that function, not the wrapper."""
    decorate = decorator(retry_policy=TRANSIENT_RETRY, **kwargs)
    return lambda compute: linked_to_source(decorate(final_unless_transient(compute)), compute)
