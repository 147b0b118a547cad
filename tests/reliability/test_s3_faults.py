"""S3 endpoint faults: retried with backoff, and a run that still cannot finish fails cleanly.

A fault proxy (tests/reliability/fault_proxy.py) sits between the connector
and moto and answers 500 InternalError or 503 SlowDown, resets connections
before an answer or halfway through a body, or stalls halfway through a
body. A request that fails before its answer started is retried by the S3
client (botocore's standard mode: exponential backoff with jitter) and the
run completes. A body that breaks off or stalls after its first bytes
cannot be retried transparently: the file fails with a clear message, its
half-read rows are rolled back (never half-applied), the other files of the
run are imported, and the next run imports it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import (
    Answer,
    FaultProxy,
    Reset,
    ResetMidBody,
    StallMidBody,
    is_get_object,
)
from helpers import BUCKET, CONNECTION, GOAL, PREFIX, Harness, import_goal
from reliability_support import ledger_etags, profiles_by_customer

import connector.sources.s3 as s3_module
from connector.sources import S3Client
from connector.storage import RunStatus

ROWS = 3000
"""Rows of the big file: several batches (of 250) are applied before its body breaks off."""
GOAL_DEFINITION = import_goal(
    mappings=[
        {"column": "email", "property": "email", "rule": "set"},
        {"column": "points", "property": "points", "rule": "sum", "type": "number"},
    ]
)
OUT_BUCKET = "faults-out"


def small_file() -> bytes:
    return b"customer_id,email,points\nA1,a1@x.org,5\nA2,a2@x.org,7\n"


def big_file() -> bytes:
    lines = ["customer_id,email,points"]
    lines += [f"B{i % 1000:04d},b{i}@x.org,{i % 10}" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def expected_after_both() -> dict[str, list[str]]:
    points: dict[str, int] = {"A1": 5, "A2": 7}
    for i in range(ROWS):
        key = f"B{i % 1000:04d}"
        points[key] = points.get(key, 0) + i % 10
    return {key: [str(value)] for key, value in points.items()}


@pytest.fixture
async def harness(
    tmp_path: Path, moto_endpoint: str, reset_moto: None, fault_proxy: FaultProxy
) -> AsyncIterator[Harness]:
    """A connection whose endpoint is the fault proxy; the test's own uploads go to moto."""
    harness = Harness(tmp_path, moto_endpoint)
    harness.endpoint = fault_proxy.url  # the connection file points at the proxy
    harness.write_connection(GOAL_DEFINITION)
    await harness.put({f"{PREFIX}a.csv": small_file(), f"{PREFIX}b.csv": big_file()})
    yield harness
    await harness.aclose()


def points(harness: Harness) -> dict[str, list[str]]:
    return {key: props["points"] for key, props in profiles_by_customer(harness.store).items()}


def get_of(key: str) -> dict[str, Any]:
    return {"method": "GET", "path_contains": key, "when": is_get_object}


# -- retried: the run completes ---------------------------------------------------------------


def test_the_s3_client_retries_in_standard_mode_with_backoff() -> None:
    """Standard mode: exponential backoff with jitter on 5xx, throttling and connection errors."""
    client = S3Client(s3_module.S3Credentials())
    assert client._config.retries == {"total_max_attempts": 3, "mode": "standard"}


@pytest.mark.parametrize(
    "fault",
    [Answer(500, "InternalError"), Answer(503, "SlowDown"), Reset()],
    ids=["500", "503-slowdown", "reset"],
)
async def test_a_failing_listing_and_reads_are_retried_and_the_import_completes(
    harness: Harness, fault_proxy: FaultProxy, fault: Answer | Reset
) -> None:
    fault_proxy.add(fault, method="GET", query_contains="list-type", times=2)
    fault_proxy.add(fault, **get_of("a.csv"), times=2)
    fault_proxy.add(fault, **get_of("b.csv"), times=1)

    outcome = await harness.run(batch_size=250)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert points(harness) == expected_after_both()
    failed = [seen for seen in fault_proxy.requests() if seen.action != "passed"]
    assert len(failed) == 5
    reads = [seen.target for seen in fault_proxy.requests() if "a.csv" in seen.target]
    assert len(reads) == 3  # two failures, then the answer


async def test_a_throttled_export_upload_is_retried_and_lands_whole(
    harness: Harness, fault_proxy: FaultProxy
) -> None:
    await harness.run()
    await (await harness.s3()).ensure_bucket(OUT_BUCKET)
    harness.write_connection(export_definition())
    fault_proxy.add(Answer(503, "SlowDown"), method="PUT", times=2)

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert len(fault_proxy.requests("503 SlowDown")) == 2
    data = await read_object(harness, "out/points.csv")
    assert data.decode().splitlines() == ["customer,points", *expected_rows(harness)]
    assert harness.store.export_watermark(CONNECTION, "out") is not None


# -- not retriable: the file fails cleanly, the next run imports it ----------------------------


async def test_a_connection_reset_mid_body_fails_the_file_cleanly_and_the_next_run_imports_it(
    harness: Harness, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(ResetMidBody(0.6), **get_of("b.csv"), times=1)

    broken = await harness.run(batch_size=250)

    assert broken.record.status is RunStatus.FAILURE
    [error] = broken.result.errors
    assert error.startswith(f"s3://{BUCKET}/{PREFIX}b.csv: reading the object failed")
    assert "broke off" in error
    assert points(harness) == {"A1": ["5"], "A2": ["7"]}  # b's applied batches rolled back
    assert set(ledger_etags(harness.store, CONNECTION, GOAL)) == {f"{PREFIX}a.csv"}

    again = await harness.run(batch_size=250)

    assert again.record.status is RunStatus.SUCCESS
    assert again.record.counts.files == 1
    assert points(harness) == expected_after_both()


async def test_a_read_that_stalls_mid_body_times_out_and_fails_the_file_cleanly(
    harness: Harness, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "DEFAULT_READ_TIMEOUT", 1.0)
    fault_proxy.add(StallMidBody(0.5, seconds=20), **get_of("b.csv"), times=1)

    stalled = await harness.run(batch_size=250)

    assert stalled.record.status is RunStatus.FAILURE
    [error] = stalled.result.errors
    assert error.startswith(f"s3://{BUCKET}/{PREFIX}b.csv: reading the object failed")
    assert "did not answer within 1 s" in error
    assert points(harness) == {"A1": ["5"], "A2": ["7"]}
    assert set(ledger_etags(harness.store, CONNECTION, GOAL)) == {f"{PREFIX}a.csv"}

    again = await harness.run(batch_size=250)

    assert again.record.status is RunStatus.SUCCESS
    assert points(harness) == expected_after_both()


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Answer(503, "SlowDown"),
            "S3 is throttling requests and retries were exhausted; try again later",
        ),
        (
            Answer(500, "InternalError"),
            "S3 had an internal error (InternalError) and retries were exhausted",
        ),
        (Reset(), "could not reach the S3 endpoint"),
    ],
    ids=["503-slowdown", "500", "reset"],
)
async def test_when_retries_are_exhausted_the_file_fails_with_a_clear_error_and_nothing_of_it_lands(
    harness: Harness,
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    fault: Answer | Reset,
    message: str,
) -> None:
    monkeypatch.setattr(s3_module, "DEFAULT_MAX_ATTEMPTS", 3)  # two retries: fewer backoff waits
    fault_proxy.add(fault, **get_of("b.csv"))

    outcome = await harness.run(batch_size=250)

    assert outcome.record.status is RunStatus.FAILURE
    [error] = outcome.result.errors
    assert error.startswith(f"s3://{BUCKET}/{PREFIX}b.csv: reading the object failed: ")
    assert message in error
    assert "Traceback" not in error
    # the first attempt and two retries (aiohttp retries a reset keep-alive connection once more)
    assert len([s for s in fault_proxy.requests() if "b.csv" in s.target]) >= 3
    assert points(harness) == {"A1": ["5"], "A2": ["7"]}
    assert outcome.record.error is not None
    assert message in outcome.record.error

    fault_proxy.clear()
    again = await harness.run(batch_size=250)
    assert again.record.status is RunStatus.SUCCESS
    assert points(harness) == expected_after_both()


async def test_a_listing_that_keeps_failing_fails_the_goal_and_applies_nothing(
    harness: Harness, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_module, "DEFAULT_MAX_ATTEMPTS", 3)
    fault_proxy.add(Answer(503, "SlowDown"), method="GET", query_contains="list-type")

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.FAILURE
    [error] = outcome.result.errors
    assert f"s3://{BUCKET}: listing objects failed: S3 is throttling requests" in error
    assert harness.store.count_profiles() == 0
    assert harness.store.ledger(CONNECTION, GOAL) == {}


async def test_an_export_whose_upload_keeps_failing_fails_cleanly_and_keeps_its_watermark(
    harness: Harness, fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    await harness.run()
    await (await harness.s3()).ensure_bucket(OUT_BUCKET)
    harness.write_connection(export_definition())
    monkeypatch.setattr(s3_module, "DEFAULT_MAX_ATTEMPTS", 3)
    fault_proxy.add(Answer(500, "InternalError"), method="PUT")

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.FAILURE
    [error] = outcome.result.errors
    assert f"s3://{OUT_BUCKET}/out/points.csv: writing the object failed" in error
    assert "retries were exhausted" in error
    assert harness.store.export_watermark(CONNECTION, "out") is None
    s3 = await harness.s3()
    assert [obj.key async for obj in s3.list_objects(OUT_BUCKET)] == []

    fault_proxy.clear()
    again = await harness.run()
    assert again.record.status is RunStatus.SUCCESS
    assert harness.store.export_watermark(CONNECTION, "out") is not None


# -- export helpers ----------------------------------------------------------------------------


def export_definition() -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": "out",
        "destination": {"bucket": OUT_BUCKET, "directory": "out/", "file_name": "points.csv"},
        "mode": "full",
        "columns": [
            {"header": "customer", "property": "customer_id"},
            {"header": "points", "property": "points"},
        ],
    }


def expected_rows(harness: Harness) -> list[str]:
    profiles = sorted(harness.store.iter_profiles(), key=lambda profile: profile.id)
    return [f"{p.properties['customer_id'][0]},{p.properties['points'][0]}" for p in profiles]


async def read_object(harness: Harness, key: str) -> bytes:
    s3 = await harness.s3()
    return b"".join([chunk async for chunk in s3.iter_object(OUT_BUCKET, key)])
