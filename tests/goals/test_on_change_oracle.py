"""`on_change: replace` against its definition, on random histories of corrected files.

Hypothesis draws a few files, each delivered in one to three versions, applied
in a random interleaving (each file's versions in order), over a store that
may already hold values. However the versions came in, the store must hold
what the latest version of each file says, on top of what was there before:
sums are the seed plus the latest versions' totals, added values the seed's
plus those the latest versions list, and a sum or list no latest version
touches is absent again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config import Connection
from connector.engine.segment_index import SegmentIndex
from connector.goals.context import GoalContext
from connector.imports.goal import profile_appliers
from connector.imports.pipeline import apply_file
from connector.sources import S3Credentials, S3Object
from connector.storage import Profile, ProfileStore, SQLiteStore

KEYS = ["k1", "k2", "k3", "k4"]
POINTS = st.sampled_from(["", "0", "1", "5", "-2", "2,5", "10"])
TAGS = st.sampled_from(["", "a", "b|c", "a|d", "c", "d|d"])
ROW = st.tuples(st.sampled_from(KEYS), POINTS, TAGS)
VERSION = st.lists(ROW, max_size=6)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    files = draw(st.lists(st.lists(VERSION, min_size=1, max_size=3), min_size=1, max_size=3))
    events = [index for index, versions in enumerate(files) for _ in versions]
    return {
        "files": files,
        "order": draw(st.permutations(events)),
        "seed": draw(st.booleans()),
    }


CONNECTION = Connection.model_validate(
    {
        "id": "oracle",
        "goals": [
            {
                "type": "import-profiles",
                "name": "in",
                "source": {"bucket": "oracle-in"},
                "format": {"field_separator": ";", "decimal_separator": ","},
                "match": {"column": "id", "property": "customer_id", "create_missing": True},
                "on_change": "replace",
                "mappings": [
                    {"column": "points", "property": "points", "rule": "sum"},
                    {"column": "tags", "property": "tags", "rule": "add"},
                ],
            }
        ],
    }
)
SEED = Profile("seed-k1", {"customer_id": ["k1"], "points": ["100"], "tags": ["a"]})


def _csv(rows: list[tuple[str, str, str]]) -> bytes:
    return ("id;points;tags\n" + "".join(f"{k};{p};{t}\n" for k, p, t in rows)).encode()


class _Chunks:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.consumed = len(data)  # the bytes read so far, for the run's progress

    def __iter__(self) -> Iterator[bytes]:
        yield self._data

    def abandon(self) -> None:
        pass

    def record(self) -> None:
        pass

    def stop_recording(self) -> None:
        pass

    def rewind(self) -> None:
        raise AssertionError("a replace goal never starts on the columnar path")


def _apply(store: ProfileStore, file: int, version: int, rows: list[Any]) -> None:
    goal = CONNECTION.goals[0]
    ctx = GoalContext(
        connection=CONNECTION,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
    )
    data = _csv(rows)
    obj = S3Object(f"file{file}.csv", len(data), f'"v{version}"', datetime.now(UTC))
    result = apply_file(ctx, goal, obj, _Chunks(data), "fp", profile_appliers(ctx, goal), None)  # type: ignore[arg-type]
    assert not result.errors


def _expected(history: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per customer: the points total (None: absent) and the set of tags."""
    points: dict[str, Decimal | None] = dict.fromkeys(KEYS)
    tags: dict[str, set[str]] = {key: set() for key in KEYS}
    if history["seed"]:
        points["k1"], tags["k1"] = Decimal(100), {"a"}
    for versions in history["files"]:
        for key, value, listed in versions[-1]:
            if value:
                points[key] = (points[key] or Decimal(0)) + Decimal(value.replace(",", "."))
            tags[key].update(tag for tag in listed.split("|") if tag)
    return {key: {"points": points[key], "tags": tags[key]} for key in KEYS}


def _actual(store: ProfileStore) -> dict[str, dict[str, Any]]:
    found = {key: {"points": None, "tags": set()} for key in KEYS}
    for profile in store.iter_profiles():
        props = profile.properties
        stored = props.get("points")
        found[props["customer_id"][0]] = {
            "points": Decimal(stored[0]) if stored else None,
            "tags": set(props.get("tags", [])),
        }
        assert len(props.get("tags", [])) == len(set(props.get("tags", [])))
    return found


@contextmanager
def _store(kind: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[ProfileStore]:
    if kind == "sqlite":
        with SQLiteStore(folder / "store.db") as store:
            yield store
        return
    import psycopg  # noqa: PLC0415

    from connector.storage.postgres import PostgresStore  # noqa: PLC0415

    database = request.getfixturevalue("postgres")
    schema = f"replace_{secrets.token_hex(6)}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with PostgresStore(f"{database}?options=-csearch_path%3D{schema}") as store:
            yield store
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.parametrize(
    ("kind", "examples"),
    [("sqlite", 150), pytest.param("postgres", 30, marks=pytest.mark.postgres)],
)
def test_each_file_counts_once_at_its_latest_version_whatever_the_order(
    kind: str,
    examples: int,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(history=histories())
    def replace_keeps_only_the_latest_versions(history: dict[str, Any]) -> None:
        with _store(kind, tmp_path_factory.mktemp("replace"), request) as store:
            store.ensure_unique_properties(["customer_id"])
            if history["seed"]:
                with store.transaction() as tx:
                    tx.save_profiles([SEED])
            applied = [0] * len(history["files"])
            for file in history["order"]:
                rows = history["files"][file][applied[file]]
                _apply(store, file, applied[file], rows)
                applied[file] += 1
            assert _actual(store) == _expected(history)

    replace_keeps_only_the_latest_versions()
