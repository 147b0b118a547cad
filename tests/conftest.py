"""Shared fixtures: one real moto S3 server over HTTP for the whole session.

moto's in-process `mock_aws` cannot patch aiobotocore, so S3 tests talk to a
ThreadedMotoServer on a free local port. Tests that need a clean S3 request
`reset_moto`; nothing resets implicitly.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from connector.sources.s3 import S3Client, S3Credentials


@pytest.fixture(scope="session", autouse=True)
def aws_test_environment() -> Iterator[None]:
    """Fake credentials and no shared config, so no test can reach real AWS."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        patch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        patch.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server started once per session, e.g. "http://127.0.0.1:PORT"."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def reset_moto(moto_endpoint: str) -> None:
    """Forget every bucket and object in the moto server."""
    url = f"{moto_endpoint}/moto-api/reset"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - our local http server
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200


@pytest.fixture
def s3_credentials(moto_endpoint: str) -> S3Credentials:
    return S3Credentials(
        region="eu-west-1",
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )


@pytest.fixture
async def s3(s3_credentials: S3Credentials) -> AsyncIterator[S3Client]:
    """An open S3Client on the moto server."""
    async with S3Client(s3_credentials) as client:
        yield client


# -- PostgreSQL ----------------------------------------------------------------------

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """URL of a database created for this test session on the local server, dropped at the end.

    Tests that use it are marked `postgres`. Without a server they fail in CI
    (`CI` set; `.ci/run` starts the server) and wherever
    `CONNECTOR_TEST_POSTGRES=required`; elsewhere (a newcomer's machine
    without PostgreSQL) they are skipped with the reason in pytest's summary.
    """
    import secrets  # noqa: PLC0415 -- only sessions that use PostgreSQL need these

    import psycopg  # noqa: PLC0415

    name = f"connector_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL is not reachable at 127.0.0.1:5432 (start it): {error}"
        if os.environ.get("CI") or os.environ.get("CONNECTOR_TEST_POSTGRES") == "required":
            pytest.fail(reason)
        pytest.skip(reason)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres: str) -> Iterator[str]:
    """A store URL of its own: a fresh schema in the session's database, dropped after the test."""
    import secrets  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- one store per test, on either backend ---------------------------------------------

POSTGRES_TOO = {
    "test_import_profiles_rules",
    "test_import_profiles_formats",
    "test_import_profiles_scan",
    "test_export_profiles",
    "test_import_groups",
    "test_exactly_once",
    "test_import_on_change",
    "test_match_normalize",
    "test_export_uploads",
    "test_export_exits",
    "test_export_exits_killed",
}
"""Goal test modules that run on PostgreSQL as well as SQLite (issue 14: same tests, both
stores). The rest of the goal tests exercise parsing and writing files, not the store, and
run on SQLite only, to keep the suite near ten minutes on two cores."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if (
        "store_kind" in metafunc.fixturenames
        and metafunc.module.__name__.rsplit(".", 1)[-1] in POSTGRES_TOO
    ):
        metafunc.parametrize(
            "store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
        )


@pytest.fixture
def store_kind() -> str:
    """The backend of the test's store: "sqlite", or "postgres" in the modules of POSTGRES_TOO."""
    return "sqlite"


@pytest.fixture
def new_database(
    store_kind: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[Path], str]]:
    """Makes a store's `database` setting: a SQLite file under `root`, or a fresh PostgreSQL
    schema (dropped after the test). Called once per store a test needs."""
    schemas: list[str] = []

    def make(root: Path) -> str:
        if store_kind == "sqlite":
            return str(root / "store" / "connector.db")
        import secrets  # noqa: PLC0415

        import psycopg  # noqa: PLC0415

        database = request.getfixturevalue("postgres")
        schema = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return f"{database}?options=-csearch_path%3D{schema}"

    yield make
    if schemas:
        import psycopg  # noqa: PLC0415

        with psycopg.connect(request.getfixturevalue("postgres"), autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
