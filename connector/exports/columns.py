"""The columns of an export goal: which cells a row has and which rows are written.

Built for whole Arrow batches in `connector.engine.columns`; this module is
the goal's view of it (the names the export and its tests use).
"""

from __future__ import annotations

from connector.engine.columns import (
    COLUMN_VALUES,
    EXITED,
    PERMISSION_LEVEL,
    REALIZED,
    VIEWED_INTERACTIONS,
    ExportColumns,
    GroupsByType,
    RowRules,
    hasher,
)

__all__ = [
    "COLUMN_VALUES",
    "EXITED",
    "PERMISSION_LEVEL",
    "REALIZED",
    "VIEWED_INTERACTIONS",
    "ExportColumns",
    "GroupsByType",
    "RowRules",
    "hasher",
]
