"""A file that changes while it is read is not half-imported.

The listing's ETag pins the version: the read asks S3 for exactly that
version (IfMatch), and S3 serves one version whole, so a file replaced while
its rows are being applied is applied whole as it was listed — never a mix of
two versions — and its new version is a changed file for the next run. (A
file replaced between listing and reading is skipped and imported next run:
tests/goals/test_import_profiles_scan.py.)
"""

from __future__ import annotations

from helpers import BUCKET, CONNECTION, GOAL, PREFIX, Harness, csv_bytes, import_goal
from reliability_support import ledger_etags, moto_s3_backend, profiles_by_customer

from connector.storage import RunStatus

ROWS = 40_000
PADDING = "p" * 300
"""About 12 MB a version: more than the 8 one-MiB chunks read ahead, so the body is still
streaming when the first batches are applied and the file is replaced."""


def version(points: int) -> bytes:
    return csv_bytes(
        "customer_id,points,padding", *(f"C{i:05d},{points},{PADDING}" for i in range(ROWS))
    )


class ReplaceAfterFirstBatch:
    """Progress that replaces the file in S3 once its first batch has been applied."""

    def __init__(self, key: str, data: bytes) -> None:
        self.key, self.data = key, data
        self.replaced = False

    def file_started(self, goal: str, key: str, size: int) -> None:
        return None

    def advance(self, rows: int) -> None:
        if not self.replaced:
            moto_s3_backend().put_object(BUCKET, self.key, self.data)
            self.replaced = True

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        return None


async def test_a_file_replaced_while_it_is_read_is_applied_whole_as_listed_then_anew(
    plain_harness: Harness, reset_moto: None
) -> None:
    harness = plain_harness
    harness.write_connection(
        import_goal(mappings=[{"column": "points", "property": "points", "rule": "sum"}])
    )
    key = f"{PREFIX}points.csv"
    listed = (await harness.put({key: version(1)}))[key]
    progress = ReplaceAfterFirstBatch(key, version(10))

    first = await harness.run(batch_size=1000, progress=progress)

    assert progress.replaced
    assert first.record.status is RunStatus.SUCCESS
    assert first.record.counts.rows_read == ROWS
    points = {c: p["points"] for c, p in profiles_by_customer(harness.store).items()}
    assert set(map(tuple, points.values())) == {("1",)}  # the listed version, all of it
    assert ledger_etags(harness.store, CONNECTION, GOAL) == {key: listed}

    second = await harness.run(batch_size=1000)

    assert second.record.counts.files == 1  # the new version is a changed file
    points = {c: p["points"] for c, p in profiles_by_customer(harness.store).items()}
    assert set(map(tuple, points.values())) == {("11",)}
    assert ledger_etags(harness.store, CONNECTION, GOAL)[key] != listed
