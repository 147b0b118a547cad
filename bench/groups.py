"""`python -m bench.groups`: one group file through the row path and through the engine.

Generates a group file (fixed seed; set, set_if_empty, add and sum
mappings; two members a row, one in twenty unknown), seeds a store with the
member profiles, and times `apply_file` on it twice per store kind, row path
then engine, each into a fresh store, from the bytes in memory (no S3): the
difference is the applier's. Prints seconds and rows/s.
"""

from __future__ import annotations

import argparse
import random
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector.config import Connection
from connector.engine.segment_index import SegmentIndex
from connector.goals.context import GoalContext
from connector.groups.columnar import GroupBatchApplier
from connector.groups.goal import GroupApplier
from connector.imports.pipeline import apply_file
from connector.sources import S3Credentials, S3Object
from connector.storage import Profile, ProfileStore, SQLiteStore

GOAL: dict[str, Any] = {
    "type": "import-groups",
    "name": "households",
    "group_type": "household",
    "source": {"bucket": "bench"},
    "format": {"field_separator": ";", "decimal_separator": ",", "multi_value_separator": "|"},
    "match": {"column": "household_id"},
    "members": {"column": "members", "property": "customer_id"},
    "mappings": [
        {"column": "name", "property": "name", "rule": "set"},
        {"column": "founded", "property": "founded", "rule": "set_if_empty"},
        {"column": "tags", "property": "tags", "rule": "add"},
        {"column": "spend", "property": "spend", "rule": "sum", "type": "number"},
    ],
}


def group_file(rows: int, profiles: int) -> bytes:
    """`rows` rows over rows/2 households: every household appears about twice."""
    rng = random.Random(13)
    lines = ["household_id;name;founded;tags;spend;members"]
    for _ in range(rows):
        house = rng.randrange(rows // 2)
        members = "|".join(
            f"C{rng.randrange(profiles):07d}" if rng.random() > 0.05 else "nobody" for _ in range(2)
        )
        lines.append(
            f"H{house:07d};Family {house};{1900 + house % 120};t{house % 13}|t{rng.randrange(9)};"
            f"{rng.randrange(1000)},{rng.randrange(100):02d};{members}"
        )
    return ("\n".join(lines) + "\n").encode()


class _Chunks:
    def __init__(self, data: bytes, size: int = 1 << 20) -> None:
        self._data, self._size, self.consumed = data, size, 0
        self._recorded: list[bytes] | None = None
        self._replay: list[bytes] = []

    def record(self) -> None:
        self._recorded = []

    def stop_recording(self) -> None:
        self._recorded = None

    def rewind(self) -> None:
        self._replay, self._recorded = self._recorded or [], None

    def abandon(self) -> None:
        pass

    def __iter__(self) -> Iterator[bytes]:
        replay, self._replay = self._replay, []
        yield from replay
        while self.consumed < len(self._data):
            piece = self._data[self.consumed : self.consumed + self._size]
            self.consumed += len(piece)
            if self._recorded is not None:
                self._recorded.append(piece)
            yield piece


def _seed(store: ProfileStore, profiles: int) -> None:
    with store.transaction() as tx:
        tx.save_profiles(Profile(f"p{n}", {"customer_id": [f"C{n:07d}"]}) for n in range(profiles))
    store.ensure_unique_properties(["customer_id"])


def _time(store: ProfileStore, data: bytes, *, columnar: bool, mode: str = "add") -> float:
    connection = Connection.model_validate(
        {"id": "bench", "goals": [{**GOAL, "members_mode": mode}]}
    )
    goal: Any = connection.goals[0]
    ctx = GoalContext(
        connection=connection,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
        columnar=columnar,
    )
    obj = S3Object("households.csv", len(data), '"bench"', datetime.now(UTC))
    started = time.perf_counter()
    result = apply_file(
        ctx,
        goal,
        obj,
        _Chunks(data),  # type: ignore[arg-type]
        "fp",
        lambda tx, file: GroupApplier(tx, goal, file=file),
        "members",
        lambda tx, plan, file: GroupBatchApplier(tx, goal, plan, file=file),
    )
    elapsed = time.perf_counter() - started
    assert result.counts.rows_applied == data.count(b"\n") - 1, result.errors
    return elapsed


@contextmanager
def _postgres(url: str, name: str) -> Iterator[ProfileStore]:
    """A PostgreSQL store in a schema of its own, dropped afterwards."""
    import psycopg  # noqa: PLC0415 -- only this store kind needs it

    from connector.storage.postgres import PostgresStore  # noqa: PLC0415

    schema = f"bench_{name}_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with PostgresStore(f"{url}?options=-csearch_path%3D{schema}") as store:
            yield store
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _store(kind: str, name: str, folder: Path, postgres: str | None) -> Any:
    if kind == "sqlite":
        return SQLiteStore(folder / f"{name}.db")
    assert postgres is not None
    return _postgres(postgres, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL URL: measure that store too")
    parser.add_argument("--members-mode", choices=["add", "replace"], default="add")
    args = parser.parse_args()
    data = group_file(args.rows, args.profiles)
    print(
        f"group file: {args.rows:,} rows, {len(data) / 1e6:.1f} MB, "
        f"members_mode: {args.members_mode}"
    )
    with tempfile.TemporaryDirectory() as folder:
        kinds = ["sqlite", "postgres"] if args.postgres else ["sqlite"]
        for kind in kinds:
            for columnar in (False, True):
                with _store(kind, f"{kind}{int(columnar)}", Path(folder), args.postgres) as store:
                    _seed(store, args.profiles)
                    seconds = _time(store, data, columnar=columnar, mode=args.members_mode)
                path = "engine" if columnar else "row path"
                print(f"{kind:8} {path:9} {seconds:6.2f} s  {args.rows / seconds:10,.0f} rows/s")


if __name__ == "__main__":
    main()
