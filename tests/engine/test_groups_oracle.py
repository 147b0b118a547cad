"""The columnar engine imports group files exactly as the row path (`GroupApplier`) does.

Hypothesis writes random group files (repeated and empty group keys, empty
cells, multi-value member lists, unknown members, bad numbers, a stored
non-number under a sum) and applies several in sequence, with `members_mode`
add or replace, through the row path into one store and the engine into
another; every group, membership, reject and count must agree.

With `replace`, the row path replaces members once per batch of rows, so
its counts depend on where batches end; the engine's pieces end elsewhere.
The replace examples therefore keep each file in one batch and one piece
(the final groups and members agree whatever the boundaries).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.config import Connection
from connector.engine.segment_index import SegmentIndex
from connector.goals.context import GoalContext
from connector.groups import columnar as groups
from connector.groups.goal import GroupApplier
from connector.imports.pipeline import apply_file
from connector.sources import S3Credentials, S3Object
from connector.storage import PROFILE_ID, Group, Profile, ProfileStore, SQLiteStore

GROUP_KEYS = ["g1", "g2", "g3", " g1 ", "", "G2", "g4"]
KEYS = st.sampled_from(GROUP_KEYS)
TEXT = st.sampled_from(["a", "b", "", " c ", "a|b", "b|a|b", "|", "Ünï", 'q"uote', "back\\slash"])
NUMBER = st.sampled_from(["1", "2,5", "-3", "0", "", "abc", "1.000,5", " 7 ", "10"])
MEMBER_VALUES = ["C001", "C002", " C003 ", "C004", "p1", "p2", "nobody", "c001", ""]
PROFILES = {f"C00{n}": f"p{n}" for n in range(1, 5)}


class _Chunks:
    """A ChunkChannel stand-in over bytes in memory (small chunks: boundaries everywhere)."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self._pieces = [data[i : i + size] for i in range(0, len(data), size)]
        self._recorded: list[bytes] | None = None
        self._replay: list[bytes] = []
        self.consumed = 0

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
        while self._pieces:
            piece = self._pieces.pop(0)
            if self._recorded is not None:
                self._recorded.append(piece)
            yield piece


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    lines = [";".join(header), *(";".join(row) for row in rows)]
    return ("\n".join(lines) + "\n").encode()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    mappings = []
    for index in range(draw(st.integers(0, 4))):
        rule = draw(st.sampled_from(["set", "set_if_empty", "add", "sum"]))
        value_type = "number" if rule == "sum" else draw(st.sampled_from(["text", "number"]))
        mappings.append(
            {"column": f"c{index}", "property": f"p{index}", "rule": rule, "type": value_type}
        )
    mode = draw(st.sampled_from(["add", "replace"]))
    with_members = mode == "replace" or draw(st.booleans())
    members = st.lists(st.sampled_from(MEMBER_VALUES), max_size=4).map("|".join)
    typed = {"text": TEXT, "number": NUMBER}

    def rows() -> list[list[str]]:
        return [
            [
                draw(KEYS),
                *(draw(typed[m["type"]]) for m in mappings),
                *([draw(members)] if with_members else []),
            ]
            for _ in range(draw(st.integers(0, 12)))
        ]

    return {
        "mappings": mappings,
        "mode": mode,
        "members": (
            {"column": "m", "property": draw(st.sampled_from([PROFILE_ID, "customer_id"]))}
            if with_members
            else None
        ),
        "files": [rows() for _ in range(draw(st.integers(1, 3)))],
        "piece_bytes": 8 << 20 if mode == "replace" else draw(st.sampled_from([8 << 20, 16])),
        "batch_size": 1000 if mode == "replace" else draw(st.sampled_from([1000, 2])),
    }


def _connection(scenario: dict[str, Any]) -> Connection:
    goal: dict[str, Any] = {
        "type": "import-groups",
        "name": "in",
        "group_type": "household",
        "source": {"bucket": "oracle-in"},
        "format": {
            "field_separator": ";",
            "decimal_separator": ",",
            "multi_value_separator": "|",
        },
        "match": {"column": "id"},
        "mappings": scenario["mappings"],
        "members_mode": scenario["mode"],
    }
    if scenario["members"]:
        goal["members"] = scenario["members"]
    return Connection.model_validate({"id": "oracle", "goals": [goal]})


def _apply(
    store: ProfileStore,
    connection: Connection,
    data: bytes,
    *,
    columnar: bool,
    n: int,
    scenario: dict[str, Any],
) -> Any:
    goal: Any = connection.goals[0]
    ctx = GoalContext(
        connection=connection,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
        columnar=columnar,
        piece_bytes=scenario["piece_bytes"],
        batch_size=scenario["batch_size"],
    )
    if goal.members and goal.members.property != PROFILE_ID:
        store.ensure_unique_properties([goal.members.property])

    def rows(tx: Any, file: str) -> GroupApplier:
        return GroupApplier(tx, goal, file=file)

    def pieces(tx: Any, plan: Any, file: str) -> groups.GroupBatchApplier:
        return groups.GroupBatchApplier(tx, goal, plan, file=file)

    obj = S3Object(f"file{n}.csv", len(data), f'"etag{n}"', datetime.now(UTC))
    extra = goal.members.column if goal.members else None
    return apply_file(ctx, goal, obj, _Chunks(data), "fp", rows, extra, pieces)  # type: ignore[arg-type]


def _seed(store: ProfileStore) -> None:
    """Four profiles, and a group whose stored `p0`..`p3` a sum cannot add to."""
    with store.transaction() as tx:
        tx.save_profiles(Profile(pid, {"customer_id": [cid]}) for cid, pid in PROFILES.items())
        odd = {f"p{index}": ["abc"] for index in range(4)}
        tx.save_groups([Group("household", "g3", odd)])
        tx.add_members("household", [("g3", "p4")])


def _groups(store: ProfileStore) -> dict[str, tuple[dict[str, list[str]], list[str]]]:
    found = {}
    for key in {key.strip() for key in GROUP_KEYS if key.strip()}:
        group = store.get_group("household", key)
        if group is not None:
            found[key] = (group.properties, sorted(group.members))
    return found


STORE_KINDS = ["sqlite", "sqlite-executemany", pytest.param("postgres", marks=pytest.mark.postgres)]
EXAMPLES = {"sqlite": 120, "sqlite-executemany": 40, "postgres": 30}
"""`sqlite` moves the engine's rows natively (`_arrow_bind`: `arrow_rows`, `query_columns`),
`sqlite-executemany` through `executemany` and `fetchall`, the route a process without
the extension takes."""


def _stamps(store: ProfileStore) -> dict[str, int]:
    return {profile.id: profile.change_seq for profile in store.iter_profiles()}


def _stamped(store: ProfileStore, before: dict[str, int]) -> set[str]:
    """The profiles the last file stamped (a new change sequence)."""
    return {pid for pid, seq in _stamps(store).items() if seq != before.get(pid)}


@contextmanager
def _engine_store(
    kind: str, folder: Path, request: pytest.FixtureRequest
) -> Iterator[ProfileStore]:
    """The store the engine writes: a SQLite file, or PostgreSQL in a schema of its own."""
    if kind.startswith("sqlite"):
        with SQLiteStore(folder / "engine.db") as store:
            assert store.binds_arrow_natively, "the _arrow_bind extension is not in use"
            store.binds_arrow_natively = kind == "sqlite"
            yield store
        return
    import psycopg  # noqa: PLC0415 -- only the PostgreSQL variant needs it

    from connector.storage.postgres import PostgresStore  # noqa: PLC0415

    database = request.getfixturevalue("postgres")
    schema = f"groups_{secrets.token_hex(6)}"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with PostgresStore(f"{database}?options=-csearch_path%3D{schema}") as store:
            yield store
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_engine_imports_groups_exactly_as_the_row_path(
    kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """The row path on SQLite is the oracle for the engine on either store."""

    @settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scenario=scenarios())
    def engine_matches_the_row_path(scenario: dict[str, Any]) -> None:
        folder = tmp_path_factory.mktemp("groups")
        connection = _connection(scenario)
        header = ["id", *(m["column"] for m in scenario["mappings"])]
        if scenario["members"]:
            header.append("m")
        with (
            SQLiteStore(folder / "rows.db") as rows_store,
            _engine_store(kind, folder, request) as engine_store,
        ):
            for store in (rows_store, engine_store):
                _seed(store)
            for number, rows in enumerate(scenario["files"]):
                data = _csv(header, rows)
                stamps = [_stamps(store) for store in (rows_store, engine_store)]
                expected = _apply(
                    rows_store, connection, data, columnar=False, n=number, scenario=scenario
                )
                got = _apply(
                    engine_store, connection, data, columnar=True, n=number, scenario=scenario
                )
                assert got.rejects == expected.rejects
                assert got.counts == expected.counts
                assert _groups(engine_store) == _groups(rows_store)
                # a membership that begins or ends stamps its profile for incremental exports
                assert _stamped(engine_store, stamps[1]) == _stamped(rows_store, stamps[0])
                for profile_id in PROFILES.values():
                    assert engine_store.groups_of_profile(
                        profile_id
                    ) == rows_store.groups_of_profile(profile_id)

    engine_matches_the_row_path()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_group_oracle_really_runs_the_engine(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Guard against a silent fall-back, and show each count on a small file by hand."""
    applied: list[int] = []
    original = groups.GroupBatchApplier.apply

    def counting(self: Any, converted: Any) -> Any:
        applied.append(converted.piece.table.num_rows)
        return original(self, converted)

    monkeypatch.setattr(groups.GroupBatchApplier, "apply", counting)
    scenario = {
        "mappings": [{"column": "c0", "property": "p0", "rule": "sum", "type": "number"}],
        "mode": "replace",
        "members": {"column": "m", "property": "customer_id"},
        "piece_bytes": 1 << 20,
        "batch_size": 1000,
    }
    data = b"id;c0;m\ng1;1;C001|nobody\ng1;2,5;C002| C003 \ng3;1;C001\ng2;;\ng4;x;C001\n"
    with _engine_store(kind, tmp_path, request) as store:
        _seed(store)
        result = _apply(store, _connection(scenario), data, columnar=True, n=0, scenario=scenario)
        assert applied == [5]
        assert [(r.line, r.column) for r in result.rejects] == [(4, "c0"), (6, "c0")]
        counts = result.counts
        assert (counts.rows_applied, counts.groups_created, counts.groups_deleted) == (3, 2, 1)
        assert counts.members_unmatched == 1
        group = store.get_group("household", "g1")
        assert group is not None
        assert group.properties == {"p0": ["3.5"]}
        assert sorted(group.members) == ["p2", "p3"]
        assert store.get_group("household", "g2") is None
