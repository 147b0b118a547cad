"""Fixtures shared by the goal tests."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from helpers import Harness


@pytest.fixture(scope="session")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A throwaway key pair; the public key is exported armored to `partner.asc`."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            *("gpg", "--batch", "--passphrase", "", "--quick-gen-key", "P <p@example.com>"),
            *("future-default", "default", "never"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    public = subprocess.run(
        ["gpg", "--batch", "--armor", "--export", "p@example.com"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    (home / "partner.asc").write_bytes(public)
    yield home
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True)


@pytest.fixture
async def harness(
    tmp_path: Path,
    moto_endpoint: str,
    reset_moto: None,
    new_database: Callable[[Path], str],
) -> AsyncIterator[Harness]:
    """A store (see `store_kind`), a goals folder and an empty bucket on the moto server."""
    h = Harness(tmp_path, moto_endpoint, new_database(tmp_path))
    await h.bucket()
    yield h
    await h.aclose()
