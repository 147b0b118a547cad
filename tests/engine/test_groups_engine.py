"""The group engine's file is one transaction: a failure midway keeps nothing of it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.config import Connection
from connector.engine.segment_index import SegmentIndex
from connector.errors import SourceError
from connector.goals.context import GoalContext
from connector.groups import columnar as groups
from connector.groups.goal import GroupApplier
from connector.imports.pipeline import apply_file
from connector.sources import S3Credentials, S3Object
from connector.storage import Profile, ProfileStore, SQLiteStore
from connector.storage.postgres._batches import PostgresBatchTransaction
from connector.storage.sqlite._batches import SQLiteBatchTransaction

GOAL: dict[str, Any] = {
    "type": "import-groups",
    "name": "households",
    "group_type": "household",
    "source": {"bucket": "crm-groups"},
    "format": {"field_separator": ";", "multi_value_separator": "|"},
    "match": {"column": "household_id"},
    "members": {"column": "members"},
    "mappings": [{"column": "name", "property": "name"}],
}


class _Cut:
    """The file's bytes in small chunks (replayed after a rewind), then a download error
    at `fail_at`."""

    def __init__(self, data: bytes, *, fail_at: int) -> None:
        self._data, self._fail_at, self.consumed = data, fail_at, 0
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
            if self.consumed >= self._fail_at:
                raise SourceError("households.csv: the download broke off")
            piece = self._data[self.consumed : self.consumed + 256]
            self.consumed += len(piece)
            if self._recorded is not None:
                self._recorded.append(piece)
            yield piece


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProfileStore]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "store.db") as sqlite_store:
            yield sqlite_store
        return
    from connector.storage.postgres import PostgresStore  # noqa: PLC0415

    with PostgresStore(request.getfixturevalue("postgres_url")) as postgres_store:
        yield postgres_store


def test_a_group_file_failing_midway_on_the_engine_leaves_nothing(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with store.transaction() as tx:
        tx.save_profiles([Profile("p1", {}), Profile("p2", {})])
    written: list[int] = []
    for kind in (SQLiteBatchTransaction, PostgresBatchTransaction):
        original = kind.add_members

        def counting(tx: Any, group_type: str, *pairs: Any, _original: Any = original) -> int:
            added = int(_original(tx, group_type, *pairs))
            written.append(added)
            return added

        monkeypatch.setattr(kind, "add_members", counting)
    rows = [f"H{n:04d};Family {n};p{n % 2 + 1}" for n in range(2000)]
    data = ("household_id;name;members\n" + "\n".join(rows) + "\n").encode()
    connection = Connection.model_validate({"id": "crm", "goals": [GOAL]})
    goal: Any = connection.goals[0]
    ctx = GoalContext(
        connection=connection,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
        piece_bytes=4096,
    )
    obj = S3Object("households.csv", len(data), '"e1"', datetime.now(UTC))

    with pytest.raises(SourceError):
        apply_file(
            ctx,
            goal,
            obj,
            _Cut(data, fail_at=len(data) // 2),  # type: ignore[arg-type]
            "fp",
            lambda tx, file: GroupApplier(tx, goal, file=file),
            "members",
            lambda tx, plan, file: groups.GroupBatchApplier(tx, goal, plan, file=file),
        )

    # pieces were applied inside the file's transaction before the download broke...
    assert sum(written) >= 500
    # ...and all of it was rolled back
    assert store.get_group("household", "H0000") is None
    assert store.groups_of_profile("p1") == {}
    assert store.ledger("crm", "households") == {}


def test_two_mappings_to_one_property_take_the_row_path(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later mapping sees the earlier one's value row by row: the engine leaves it."""
    pieces: list[int] = []
    original = groups.GroupBatchApplier.apply

    def counting(self: Any, converted: Any) -> Any:
        pieces.append(converted.piece.records)
        return original(self, converted)

    monkeypatch.setattr(groups.GroupBatchApplier, "apply", counting)
    twice = {
        **GOAL,
        "members": None,
        "mappings": [
            {"column": "name", "property": "names", "rule": "add"},
            {"column": "alias", "property": "names", "rule": "add"},
        ],
    }
    connection = Connection.model_validate({"id": "crm", "goals": [twice]})
    goal: Any = connection.goals[0]
    ctx = GoalContext(
        connection=connection,
        store=store,
        credentials=S3Credentials("eu-west-1", None, None, None),
        run_id=1,
        goals_dir=Path(),
        segments=SegmentIndex([]),
    )
    data = b"household_id;name;alias\nH1;Smith;Smiths\nH1;Jones;Smith\n"
    obj = S3Object("households.csv", len(data), '"e1"', datetime.now(UTC))

    result = apply_file(
        ctx,
        goal,
        obj,
        _Cut(data, fail_at=len(data)),  # type: ignore[arg-type]
        "fp",
        lambda tx, file: GroupApplier(tx, goal, file=file),
        None,
        lambda tx, plan, file: groups.GroupBatchApplier(tx, goal, plan, file=file),
    )

    assert pieces == []
    assert result.counts.groups_created == 1
    group = store.get_group("household", "H1")
    assert group is not None
    assert group.properties == {"names": ["Smith", "Smiths", "Jones"]}
