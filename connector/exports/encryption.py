"""OpenPGP encryption of an export stream to a partner's public key, by the system `gpg`.

Why gpg and not a Python library: GnuPG is what partners decrypt with, it is
maintained and packaged everywhere (Debian: `gnupg`), and it streams. PGPy,
the only pure-Python OpenPGP implementation, is unmaintained and breaks with
current `cryptography` releases; python-gnupg would only wrap this same
binary with less control over streaming.

gpg runs with a private, temporary home directory (mode 0700, deleted
afterwards), so the operator's keyrings are never read or changed and no
trust database matters: the recipient is exactly the key file the goal
names (`--recipient-file`, `--trust-model always`). `--no-autostart` keeps
gpg from starting an agent, which encrypting to a public key never needs.

Data flows through the process: `write()` feeds gpg's stdin while a task
copies its stdout to `output`, so memory stays bounded by the pipe buffers
and backpressure from the upload reaches the CSV writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from connector.errors import ConfigError, ConfigProblem, ConnectorError

__all__ = ["EncryptionError", "GpgEncryptor"]

GPG_BINARY = "gpg"
_READ_SIZE = 1 << 20
_STDERR_KEPT = 4096


class EncryptionError(ConnectorError):
    """gpg failed while encrypting; the message carries what gpg said."""


class GpgEncryptor:
    """`async with GpgEncryptor(key_file, output) as gpg: await gpg.write(data)`.

    On a clean exit gpg is told the input ended and every encrypted byte has
    reached `output` before the block returns. On an exception gpg is killed
    and its output discarded. `compress=False` skips gpg's own compression,
    which only costs time on data that is already gzipped.
    """

    def __init__(
        self,
        public_key_file: Path,
        output: Callable[[bytes], Awaitable[None]],
        *,
        compress: bool = True,
        binary: str = GPG_BINARY,
    ) -> None:
        self._key = public_key_file.resolve()
        self._output = output
        self._compress = compress
        self._binary = binary
        self._home: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._stderr_reader: asyncio.Task[bytes] | None = None

    async def __aenter__(self) -> Self:
        if not self._key.is_file():
            raise ConfigError([ConfigProblem(self._key, None, "public key file not found")])
        self._home = tempfile.mkdtemp(prefix="connector-gpg-")  # created 0700, owner only
        command = [
            self._binary,
            "--homedir",
            self._home,
            "--batch",
            "--no-tty",
            "--quiet",
            "--no-autostart",
            "--trust-model",
            "always",
            "--recipient-file",
            str(self._key),
            *([] if self._compress else ["--compress-algo", "none"]),
            "--output",
            "-",
            "--encrypt",
        ]
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "GNUPGHOME": self._home},
            )
        except FileNotFoundError:
            self._remove_home()
            raise ConfigError(
                [
                    ConfigProblem(
                        self._key,
                        None,
                        f"encryption needs the {self._binary!r} program: install GnuPG "
                        "(Debian/Ubuntu: apt install gnupg)",
                    )
                ]
            ) from None
        except BaseException:
            self._remove_home()
            raise
        self._reader = asyncio.create_task(self._copy_output())
        self._stderr_reader = asyncio.create_task(self._read_stderr())
        return self

    async def write(self, data: bytes) -> None:
        """Hand `data` to gpg, waiting while gpg (or the upload behind it) is behind."""
        process = self._running()
        assert process.stdin is not None  # noqa: S101 -- opened with stdin=PIPE
        try:
            process.stdin.write(data)
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self._raise_failure()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:
                await self._kill()
                return
            try:
                await self._finish()
            except BaseException:
                await self._kill()
                raise
        finally:
            self._remove_home()

    def _running(self) -> asyncio.subprocess.Process:
        if self._process is None:
            raise RuntimeError("use `async with GpgEncryptor(...)` before write()")
        return self._process

    async def _copy_output(self) -> None:
        process = self._running()
        assert process.stdout is not None  # noqa: S101 -- opened with stdout=PIPE
        try:
            while chunk := await process.stdout.read(_READ_SIZE):
                await self._output(chunk)
        except BaseException:
            # gpg would block on a full pipe forever; ending it unblocks write()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise

    async def _read_stderr(self) -> bytes:
        process = self._running()
        assert process.stderr is not None  # noqa: S101 -- opened with stderr=PIPE
        kept = b""
        while chunk := await process.stderr.read(_STDERR_KEPT):
            kept = (kept + chunk)[-_STDERR_KEPT:]
        return kept

    async def _finish(self) -> None:
        process = self._running()
        assert process.stdin is not None  # noqa: S101 -- opened with stdin=PIPE
        assert self._reader is not None  # noqa: S101 -- started in __aenter__
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.close()
            await process.stdin.wait_closed()
        await self._reader
        if await process.wait() != 0:
            await self._raise_failure()
        if self._stderr_reader is not None:
            await self._stderr_reader

    async def _raise_failure(self) -> None:
        """Raise the reason the pipeline broke: the output's error first, else gpg's words."""
        process = self._running()
        if self._reader is not None:
            if not self._reader.done():
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            await asyncio.wait([self._reader])
            error = self._reader.exception() if not self._reader.cancelled() else None
            if error is not None:
                raise error
        code = await process.wait()
        said = b""
        if self._stderr_reader is not None:
            said = await self._stderr_reader
        message = said.decode("utf-8", "replace").strip() or f"gpg exited with status {code}"
        raise EncryptionError(f"encrypting to the public key in {self._key} failed: {message}")

    async def _kill(self) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        tasks = [task for task in (self._reader, self._stderr_reader) if task is not None]
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.wait([*tasks, asyncio.ensure_future(process.wait())])
        for task in tasks:
            if not task.cancelled():
                task.exception()

    def _remove_home(self) -> None:
        home, self._home = self._home, None
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
