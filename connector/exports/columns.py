"""The columns of an export goal: which cells a row has and which rows are written.

Built for whole Arrow batches in `connector.engine.columns`; this module is
the goal's view of it: the names the export and its tests use, not a second
copy of the engine's surface (the column values and their registry stay there).
"""

from __future__ import annotations

from connector.engine.columns import ExportColumns, RowRules, hasher

__all__ = ["ExportColumns", "RowRules", "hasher"]
