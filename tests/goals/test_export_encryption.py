"""GpgEncryptor: streaming OpenPGP encryption through the real gpg, and how it fails."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest
from helpers import gpg_decrypt

from connector.errors import ConfigError
from connector.exports.encryption import EncryptionError, GpgEncryptor


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's folder for this test, to see the temporary GNUPGHOME come and go."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


async def test_a_stream_larger_than_the_pipes_round_trips_through_gpg(
    gpg_home: Path, scratch_tmp: Path
) -> None:
    plain = os.urandom(3 << 20)
    received = bytearray()
    largest = 0

    async def output(data: bytes) -> None:
        nonlocal largest
        largest = max(largest, len(data))
        received.extend(data)

    async with GpgEncryptor(gpg_home / "partner.asc", output, compress=False) as gpg:
        for start in range(0, len(plain), 256 << 10):
            await gpg.write(plain[start : start + (256 << 10)])

    assert gpg_decrypt(gpg_home, bytes(received)) == plain
    assert largest <= 1 << 20
    assert list(scratch_tmp.iterdir()) == []


async def test_a_failing_output_stops_gpg_and_surfaces_the_outputs_error(
    gpg_home: Path, scratch_tmp: Path
) -> None:
    async def output(data: bytes) -> None:
        raise RuntimeError("upload refused")

    async def encrypt_a_lot() -> None:
        async with GpgEncryptor(gpg_home / "partner.asc", output) as gpg:
            for _ in range(64):
                await gpg.write(os.urandom(1 << 20))

    with pytest.raises(RuntimeError, match="upload refused"):
        await asyncio.wait_for(encrypt_a_lot(), timeout=30)

    assert list(scratch_tmp.iterdir()) == []


async def test_a_file_that_is_not_a_key_fails_with_gpgs_reason(
    tmp_path: Path, scratch_tmp: Path
) -> None:
    key = tmp_path / "broken.asc"
    key.write_text("not a key\n")

    async def output(data: bytes) -> None:
        pass

    async def encrypt() -> None:
        async with GpgEncryptor(key, output) as gpg:
            await gpg.write(b"id,email\n")

    with pytest.raises(EncryptionError, match=r"broken\.asc"):
        await encrypt()

    assert list(scratch_tmp.iterdir()) == []


async def test_a_missing_gpg_program_is_reported_with_how_to_install_it(
    gpg_home: Path, scratch_tmp: Path
) -> None:
    async def output(data: bytes) -> None:
        pass

    encryptor = GpgEncryptor(gpg_home / "partner.asc", output, binary="no-such-gpg-here")

    with pytest.raises(ConfigError, match="install GnuPG"):
        await encryptor.__aenter__()

    assert list(scratch_tmp.iterdir()) == []
