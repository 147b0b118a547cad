"""Exits are exactly once under SIGKILL: an export killed mid-upload and run again neither loses
nor repeats an exit.

A real `python -m connector run` exports through the fault proxy, which
answers every upload of the data file with 503 SlowDown, so the run is
retrying its upload when it is killed: it has staged the members it found,
nothing has reached the bucket, and the goal's watermark and members must be
those of the last complete export. The proxy then lets uploads through and
a plain run delivers each exit once; a further run delivers none.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fault_proxy import Answer, FaultProxy
from helpers import CONNECTION, Harness
from reliability_support import kill_after, start_run

from connector.storage import Profile

pytestmark = pytest.mark.slow

OUT = "exits-out"
SEGMENTS = {
    "segments": [{"id": "dutch", "name": "Dutch", "where": {"property": "country", "equals": "NL"}}]
}
GOAL: dict[str, Any] = {
    "type": "export-profiles",
    "name": "out",
    "segment": "dutch",
    "mode": "incremental",
    "compression": "gzip",
    "destination": {"bucket": OUT, "file_name": "segment_timestamp"},
    "columns": [
        {"header": "id", "value": "profile_id"},
        {"header": "email", "property": "email"},
        {"header": "status", "value": "segment_status"},
    ],
}


@pytest.fixture
async def harness(
    tmp_path: Path,
    fault_proxy: FaultProxy,
    new_database: Callable[[Path], str],
    reset_moto: None,
) -> AsyncIterator[Harness]:
    """A connection whose S3 endpoint is the fault proxy, on a SQLite or PostgreSQL store."""
    h = Harness(tmp_path, fault_proxy.url, new_database(tmp_path))
    h.write_connection(GOAL)
    (h.goals_dir / "segments.yaml").write_text(yaml.safe_dump(SEGMENTS), "utf-8")
    await (await h.s3()).ensure_bucket(OUT)
    yield h
    await h.aclose()


async def data_files(harness: Harness) -> dict[str, set[str]]:
    """Every delivered file's data lines (header dropped)."""
    s3 = await harness.s3()
    files = {}
    async for obj in s3.list_objects(OUT, ""):
        data = b"".join([chunk async for chunk in s3.iter_object(OUT, obj.key)])
        files[obj.key] = set(gzip.decompress(data).decode().splitlines()[1:])
    return files


def save(harness: Harness, *profiles: Profile) -> None:
    with harness.store.transaction() as tx:
        tx.save_profiles(profiles)


async def test_an_export_killed_mid_upload_and_run_again_writes_each_exit_once(
    harness: Harness, fault_proxy: FaultProxy
) -> None:
    store = harness.store
    save(
        harness,
        *(Profile(f"p{n}", {"email": [f"{n}@x.nl"], "country": ["NL"]}) for n in range(1, 6)),
    )
    first = harness.cli("run", CONNECTION, "--quiet", timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    [delivered] = (await data_files(harness)).values()
    assert len(delivered) == 5
    watermark = store.export_watermark(CONNECTION, "out")
    members = store.export_members(CONNECTION, "out")
    assert members == ["p1", "p2", "p3", "p4", "p5"]

    save(
        harness,
        Profile("p1", {"email": ["1@new.nl"], "country": ["NL"]}),
        Profile("p2", {"email": ["2@x.nl"], "country": ["BE"]}),
    )
    with store.transaction() as tx:
        tx.delete_profiles(["p3"])
    fault_proxy.add(Answer(503, "SlowDown"), method="PUT", path_contains=f"/{OUT}/")

    def uploading() -> bool:
        return any(
            seen.method == "PUT" and seen.action.startswith("503")
            for seen in fault_proxy.requests()
        )

    process = start_run(harness, CONNECTION)
    assert kill_after(process, uploading, 0.2), "the run ended before it could be killed"

    assert store.export_watermark(CONNECTION, "out") == watermark
    assert store.export_members(CONNECTION, "out") == members
    assert len(await data_files(harness)) == 1  # the killed run delivered nothing

    fault_proxy.clear()
    again = harness.cli("run", CONNECTION, "--quiet", timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    files = await data_files(harness)
    assert len(files) == 2
    [second] = [lines for lines in files.values() if lines != delivered]
    assert second == {"p1,1@new.nl,realized", "p2,2@x.nl,exited", "p3,,exited"}
    assert store.export_members(CONNECTION, "out") == ["p1", "p4", "p5"]

    third = harness.cli("run", CONNECTION, "--quiet", timeout=120)
    assert third.returncode == 0, third.stdout + third.stderr
    assert len(await data_files(harness)) == 2  # nothing left the segment since: no file
