"""Small shared builders for goal tests: a goals folder, a store, S3 files, a run.

Tests talk to the session's moto server over HTTP and to a real SQLite file
in their `tmp_path`. `Harness` bundles the three; each test module makes one
in a fixture (the goals folder has no conftest of its own).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import Workspace, load_workspace
from connector.errors import ConfigError
from connector.goals.runner import RunOptions, RunOutcome, run_connection
from connector.sources import S3Client, S3Credentials, S3Object
from connector.storage import Profile, ProfileStore, open_store

CONNECTION = "crm"
BUCKET = "crm-exports"
PREFIX = "in/"
GOAL = "customers"
UPLOAD_GROUP = 64
"""Objects uploaded at once: concurrent enough to be quick, bounded for moto's sake."""


def import_goal(
    name: str = GOAL,
    *,
    mappings: list[dict[str, Any]] | None = None,
    match: dict[str, Any] | None = None,
    format: dict[str, Any] | None = None,
    files: Iterable[str] = ("*.csv",),
    prefix: str = PREFIX,
    **extra: Any,
) -> dict[str, Any]:
    """An import-profiles goal as YAML data; by default matched on `customer_id`, created."""
    goal: dict[str, Any] = {
        "type": "import-profiles",
        "name": name,
        "source": {"bucket": BUCKET, "prefix": prefix, "files": list(files)},
        "match": match
        if match is not None
        else {"column": "customer_id", "property": "customer_id", "create_missing": True},
        "mappings": mappings
        if mappings is not None
        else [{"column": "email", "property": "email", "rule": "set"}],
        **extra,
    }
    if format is not None:
        goal["format"] = format
    return goal


def csv_bytes(*lines: str, encoding: str = "utf-8", newline: str = "\n") -> bytes:
    """The lines, each ended by `newline`, encoded."""
    return "".join(f"{line}{newline}" for line in lines).encode(encoding)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


class Harness:
    """A goals folder, a store and the moto bucket of one test.

    The store is a SQLite file under `root`, or whatever `database` names (a
    PostgreSQL URL from the `new_database` fixture): `store` and the CLI use it.
    """

    def __init__(self, root: Path, endpoint: str, database: str | None = None) -> None:
        self.root = root
        self.endpoint = endpoint
        self.goals_dir = root / "goals"
        self.goals_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = root / "store" / "connector.db"
        self.database = database if database is not None else str(self.db_path)
        self.credentials = S3Credentials(
            region="eu-west-1",
            endpoint_url=endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
        self._store: ProfileStore | None = None
        self._s3: S3Client | None = None
        self._bucket_ready = False

    # -- configuration ---------------------------------------------------------

    def write_connection(
        self,
        *goals: dict[str, Any],
        objectives: list[str] | None = None,
        connection_id: str = CONNECTION,
    ) -> Path:
        """Write `goals/<connection_id>.yaml` with storage pointing at moto."""
        data: dict[str, Any] = {
            "id": connection_id,
            "name": "Test connection",
            "storage": {
                "region": "eu-west-1",
                "endpoint_url": self.endpoint,
                "access_key_id": "testing",
                "secret_access_key": "testing",
            },
            "goals": list(goals) or [import_goal()],
        }
        if objectives is not None:
            data["objectives"] = objectives
        path = self.goals_dir / f"{connection_id}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return path

    def workspace(self) -> Workspace:
        return load_workspace(self.goals_dir, environ={})

    @property
    def store(self) -> ProfileStore:
        if self._store is None:
            self._store = open_store(self.database)
        return self._store

    async def aclose(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._s3 is not None:
            await self._s3.__aexit__(None, None, None)
            self._s3 = None

    # -- S3 --------------------------------------------------------------------

    async def s3(self) -> S3Client:
        """The test's own client (opened once: opening one costs a good part of a second)."""
        if self._s3 is None:
            self._s3 = await S3Client(self.credentials).__aenter__()
        return self._s3

    async def bucket(self) -> None:
        if not self._bucket_ready:
            await (await self.s3()).ensure_bucket(BUCKET)
            self._bucket_ready = True

    async def put(self, files: Mapping[str, bytes | str]) -> dict[str, str]:
        """Upload `{key: content}` in bounded concurrent groups; returns `{key: etag}`."""
        items = [
            (key, data.encode() if isinstance(data, str) else data) for key, data in files.items()
        ]
        etags: dict[str, str] = {}
        await self.bucket()
        s3 = await self.s3()
        for start in range(0, len(items), UPLOAD_GROUP):
            group = items[start : start + UPLOAD_GROUP]
            tags = await asyncio.gather(*(s3.put_object(BUCKET, k, d) for k, d in group))
            etags.update(zip((key for key, _ in group), tags, strict=True))
        return etags

    async def listed(self, prefix: str = PREFIX) -> dict[str, S3Object]:
        s3 = await self.s3()
        return {obj.key: obj async for obj in s3.list_objects(BUCKET, prefix)}

    # -- running ---------------------------------------------------------------

    async def run(self, **options: Any) -> RunOutcome:
        """One run of the connection, in this process, on this test's store."""
        connection = options.pop("connection_id", CONNECTION)
        return await run_connection(self.store, self.workspace(), connection, RunOptions(**options))

    def profile(self, value: str, prop: str = "customer_id") -> Profile:
        """The one profile whose `prop` holds `value`."""
        [found] = self.store.find_profiles(prop, value)
        return found

    def properties(self, value: str, prop: str = "customer_id") -> dict[str, list[str]]:
        return self.profile(value, prop).properties

    def by_customer(self) -> dict[str, dict[str, list[str]]]:
        """Every profile's properties, keyed by its customer_id (ids are random)."""
        return {
            profile.properties["customer_id"][0]: profile.properties
            for profile in self.store.iter_profiles()
        }

    # -- the command line ------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        """The environment for a `connector` subprocess on this goals folder and store."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("CONNECTOR_") and key != "PYTEST_CURRENT_TEST"
        }
        env.update(
            CONNECTOR_GOALS_DIR=str(self.goals_dir),
            CONNECTOR_DATABASE=self.database,
            CONNECTOR_LOG_LEVEL="warning",
        )
        env.update(extra)
        return env

    def cli(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """`python -m connector ARGV` without a terminal (pipes), output captured."""
        return subprocess.run(
            [sys.executable, "-m", "connector", *argv],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )


__all__ = [
    "BUCKET",
    "CONNECTION",
    "GOAL",
    "PREFIX",
    "Harness",
    "csv_bytes",
    "gzipped",
    "import_goal",
]


def gpg_decrypt(home: Path, data: bytes) -> bytes:
    """Decrypt with the real gpg and the test key pair in `home` (the gpg_home fixture)."""
    return subprocess.run(
        ["gpg", "--batch", "--quiet", "--decrypt"],
        input=data,
        env={**os.environ, "GNUPGHOME": str(home)},
        check=True,
        capture_output=True,
    ).stdout


def save(harness: Harness, *profiles: Profile) -> None:
    """Write whole profiles straight into the harness's store (export tests' fixtures)."""
    with harness.store.transaction() as tx:
        tx.save_profiles(profiles)


async def read_text(harness: Harness, key: str = "out/profiles.csv") -> str:
    """An exported object's text, read back from the test S3."""
    s3 = await harness.s3()
    return b"".join([chunk async for chunk in s3.iter_object(BUCKET, key)]).decode()


def python_output(script: str, env: Mapping[str, str] | None = None, *args: str) -> list[str]:
    """The lines `script` printed in a fresh interpreter (for what is process-wide: the
    memory pool, loaded modules); its failure fails the test with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def config_problems(tmp_path: Path, text: str) -> list[str]:
    """The `FILE:LINE: message` problems of one connection file, relative to its folder."""
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "crm.yaml").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_workspace(folder, {})
    return [str(problem).removeprefix(f"{folder}/") for problem in caught.value.problems]
