"""Fixtures for the profile store: each `store` test runs on SQLite and on PostgreSQL.

`store` is a real SQLite file in the test's tmp_path, then a PostgresStore
in a fresh schema of the session's test database. A test whose promise is
about the SQLite file itself (WAL, file modes) is marked `sqlite_only`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.storage import ProfileStore, SQLiteStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_backend" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("store_backend", ["sqlite"] if sqlite_only else BACKENDS)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "connector.db"


@pytest.fixture
def store(store_backend: str, request: pytest.FixtureRequest) -> Iterator[ProfileStore]:
    if store_backend == "postgres":
        from connector.storage.postgres import PostgresStore  # noqa: PLC0415

        opened: ProfileStore = PostgresStore(request.getfixturevalue("postgres_url"))
    else:
        opened = SQLiteStore(request.getfixturevalue("db_path"))
    with opened:
        yield opened
