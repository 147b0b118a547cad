"""The columnar engine imports random files exactly as the row path does.

Hypothesis writes random files (repeated and empty keys, empty cells,
multi-values, bad numbers and dates, decimal commas) and random mapping
sets; each file is applied by the row path into one store and by the
engine into another, and every profile, reject and count must agree, on a
fresh store and again when a second file updates the first one's profiles.
"""

from __future__ import annotations

import io
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
from connector.imports import columnar as profiles
from connector.imports.apply_rows import ProfileApplier
from connector.imports.pipeline import apply_file
from connector.sources import S3Credentials, S3Object
from connector.storage import PROFILE_ID, ProfileStore, SQLiteStore

KEYS = st.sampled_from(
    ["k1", "k2", "k3", "K1", " k2 ", "", "k4", "a@x.org", " A@X.org", "bad@", "Ünï@x"]
)
TEXT = st.sampled_from(["a", "b", "", " c ", "a|b", "b|a|b", "|", "Ünï", "x y", "two\nlines"])
NUMBER = st.sampled_from(["1", "2,5", "-3", "0", "0,00", "", "abc", "1.000,5", " 7 ", "+4", "10"])
DATE = st.sampled_from(["01-02-2024", "31-12-1999", "", "2024-01-01", "29-02-2023", "5-6-2020"])
BOOLEAN = st.sampled_from(["yes", "no", "", "maybe", "TRUE", "0"])
TYPED: dict[str, st.SearchStrategy[str]] = {
    "text": TEXT,
    "number": NUMBER,
    "date": DATE,
    "boolean": BOOLEAN,
}


class _Chunks:
    """A ChunkChannel stand-in over bytes in memory (small chunks: boundaries everywhere)."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self._pieces = [data[i : i + size] for i in range(0, len(data), size)]
        self._recorded: list[bytes] | None = None
        self._replay: list[bytes] = []
        self.consumed = 0  # bytes handed out (a replayed chunk once), as ChunkChannel counts

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
            self.consumed += len(piece)
            yield piece


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    out.write(";".join(header) + "\n")
    for row in rows:
        out.write(";".join(f'"{cell}"' if "\n" in cell else cell for cell in row) + "\n")
    return out.getvalue().encode()


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    mappings = []
    for index in range(count):
        value_type = draw(st.sampled_from(list(TYPED)))
        rule = draw(st.sampled_from(["set", "set_if_empty", "add", "sum"]))
        if rule == "sum":
            value_type = "number"
        mappings.append(
            {"column": f"c{index}", "property": f"p{index}", "rule": rule, "type": value_type}
        )
    match_property = draw(st.sampled_from([PROFILE_ID, "customer_id"]))
    normalize = (
        draw(st.sampled_from(["trim", "lowercase", "email"]))
        if match_property != PROFILE_ID
        else "trim"
    )

    def rows() -> list[list[str]]:
        return [
            [draw(KEYS), *(draw(TYPED[m["type"]]) for m in mappings)]
            for _ in range(draw(st.integers(0, 12)))
        ]

    return {
        "mappings": mappings,
        "match": {
            "column": "id",
            "property": match_property,
            "create_missing": draw(st.booleans()),
            "normalize": normalize,
        },
        "files": [rows(), rows()],
        "piece_bytes": draw(st.sampled_from([8 << 20, 16])),
    }


def _connection(scenario: dict[str, Any]) -> Connection:
    return Connection.model_validate(
        {
            "id": "oracle",
            "goals": [
                {
                    "type": "import-profiles",
                    "name": "in",
                    "source": {"bucket": "oracle-in"},
                    "format": {
                        "field_separator": ";",
                        "decimal_separator": ",",
                        "date_format": "%d-%m-%Y",
                    },
                    "match": scenario["match"],
                    "mappings": scenario["mappings"],
                }
            ],
        }
    )


def _apply(
    store: ProfileStore,
    connection: Connection,
    data: bytes,
    *,
    columnar: bool,
    n: int,
    piece_bytes: int | None,
) -> Any:
    goal = connection.goals[0]
    ctx = GoalContext(
        connection=connection,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
        columnar=columnar,
        piece_bytes=piece_bytes,
    )
    obj = S3Object(f"file{n}.csv", len(data), f'"etag{n}"', datetime.now(UTC))
    return apply_file(ctx, goal, obj, _Chunks(data), "fp", _row_applier(ctx, goal), None)  # type: ignore[arg-type]


def _row_applier(ctx: GoalContext, goal: Any) -> Any:
    def make(tx: Any, file: str) -> ProfileApplier:
        return ProfileApplier(
            tx,
            goal,
            file=file,
            objectives=ctx.connection.objectives,
            unique_properties=ctx.store.unique_properties(),
        )

    return make


def _profiles(store: ProfileStore, match_property: str) -> dict[str, dict[str, list[str]]]:
    if match_property == PROFILE_ID:
        return {p.id: p.properties for p in store.iter_profiles()}
    return {p.properties[match_property][0]: p.properties for p in store.iter_profiles()}


STORE_KINDS = ["sqlite", "sqlite-executemany", pytest.param("postgres", marks=pytest.mark.postgres)]
EXAMPLES = {"sqlite": 120, "sqlite-executemany": 40, "postgres": 30}
"""Fewer on PostgreSQL: each example opens a store in a fresh schema. `sqlite` binds
the engine's rows natively (`_arrow_bind`), `sqlite-executemany` through `executemany`,
the route a process without the extension takes."""


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
    schema = f"oracle_{secrets.token_hex(6)}"
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
def test_the_engine_imports_exactly_as_the_row_path(
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
        folder = tmp_path_factory.mktemp("oracle")
        connection = _connection(scenario)
        header = ["id", *(m["column"] for m in scenario["mappings"])]
        match_property = scenario["match"]["property"]
        with (
            SQLiteStore(folder / "rows.db") as rows_store,
            _engine_store(kind, folder, request) as engine_store,
        ):
            for store in (rows_store, engine_store):
                if match_property != PROFILE_ID:
                    store.ensure_unique_properties([match_property])
            for number, rows in enumerate(scenario["files"]):
                data = _csv(header, rows)
                pieces = scenario["piece_bytes"]
                expected = _apply(
                    rows_store, connection, data, columnar=False, n=number, piece_bytes=pieces
                )
                got = _apply(
                    engine_store, connection, data, columnar=True, n=number, piece_bytes=pieces
                )
                assert got.rejects == expected.rejects
                assert got.counts == expected.counts
                assert _profiles(engine_store, match_property) == _profiles(
                    rows_store, match_property
                )

    engine_matches_the_row_path()


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_the_oracle_really_compares_the_engine(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Guard against a silent fall-back: the engine's applier runs on an eligible goal,
    its writes on a thread of their own where they hold no GIL (SQLite natively, and
    PostgreSQL, whose driver waits for the server without it)."""
    applied: list[int] = []
    background: list[bool] = []
    original = profiles.ProfileBatchApplier.apply

    def counting(self: Any, converted: Any) -> Any:
        applied.append(converted.piece.table.num_rows)
        background.append(self._store.background)
        return original(self, converted)

    monkeypatch.setattr(profiles.ProfileBatchApplier, "apply", counting)
    scenario = {
        "mappings": [{"column": "c0", "property": "p0", "rule": "sum", "type": "number"}],
        "match": {"column": "id", "property": PROFILE_ID, "create_missing": True},
    }
    with _engine_store(kind, tmp_path, request) as store:
        result = _apply(
            store,
            _connection(scenario),
            b"id;c0\nk1;1\nk1;2,5\n",
            columnar=True,
            n=0,
            piece_bytes=1 << 20,
        )
        assert applied == [2]
        assert background == [kind != "sqlite-executemany"]
        assert result.counts.rows_applied == 2
        profile = store.get_profile("k1")
        assert profile is not None
        assert profile.properties == {"p0": ["3.5"]}
