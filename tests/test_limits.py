"""Each knob has one home: every copy of a default reads `connector.limits`."""

from __future__ import annotations

import dataclasses
import inspect

from connector import limits
from connector.goals.context import GoalContext
from connector.goals.runner import RunOptions
from connector.imports._piece_size import PIECE_SIZES
from connector.settings import Settings
from connector.sources import s3
from connector.storage import SQLiteStore
from connector.storage.base import ProfileStore
from connector.storage.postgres.store import PostgresStore


def _default(cls: type, name: str) -> object:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def test_settings_defaults_are_the_limits() -> None:
    fields = Settings.model_fields
    assert fields["batch_size"].default == limits.ROW_BATCH_ROWS
    assert fields["max_rejects_stored"].default == limits.MAX_REJECTS_STORED
    assert fields["smtp_timeout"].default == limits.SMTP_TIMEOUT_SECONDS
    assert fields["shutdown_timeout"].default == limits.SHUTDOWN_TIMEOUT_SECONDS


def test_a_run_without_settings_uses_the_same_batch_and_reject_limits() -> None:
    for cls in (RunOptions, GoalContext):
        assert _default(cls, "batch_size") == limits.ROW_BATCH_ROWS
        assert _default(cls, "max_rejects") == limits.MAX_REJECTS_STORED
    # a file's piece size comes from the process's registry, by the imports running
    assert _default(GoalContext, "piece_bytes") is None
    with PIECE_SIZES.sized() as alone, PIECE_SIZES.sized() as beside:
        assert (alone, beside) == (limits.PIECE_BYTES, limits.PIECE_BYTES_SHARED)


def test_every_store_pages_and_limits_alike() -> None:
    for cls in (ProfileStore, SQLiteStore, PostgresStore):
        walk = inspect.signature(cls.iter_profiles).parameters["batch_size"].default
        rejects = inspect.signature(cls.run_rejects).parameters["limit"].default
        batches = inspect.signature(cls.profile_batches).parameters["batch_size"].default
        assert (walk, rejects, batches) == (
            limits.STORE_PAGE_ROWS,
            limits.MAX_REJECTS_STORED,
            limits.PROFILE_BATCH_ROWS,
        ), cls.__name__


def test_s3_defaults_are_the_limits() -> None:
    assert s3.DEFAULT_MAX_ATTEMPTS == limits.S3_MAX_ATTEMPTS
    assert s3.DEFAULT_CONNECT_TIMEOUT == limits.S3_CONNECT_TIMEOUT_SECONDS
    assert s3.DEFAULT_READ_TIMEOUT == limits.S3_READ_TIMEOUT_SECONDS
