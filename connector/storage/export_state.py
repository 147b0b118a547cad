"""The export state concern of the store: watermarks, export members, open multipart uploads.

What it guarantees: an export's watermark and its members move together
(`set_export_watermark(..., members=True)` swaps the staged members in the
same transaction), so an export killed half way changes neither and the
next one sends the same changes and exits again. An upload is noted as soon
as S3 gives it an id and forgotten once completed or aborted, so what a
killed export left in S3 can be found and aborted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from connector.storage.records import ExportWatermark, OpenUpload


class ExportState(ABC):
    """What incremental exports remember between runs."""

    # -- export watermarks ---------------------------------------------------
    @abstractmethod
    def export_watermark(self, connection: str, goal: str) -> ExportWatermark | None: ...

    @abstractmethod
    def set_export_watermark(
        self,
        connection: str,
        goal: str,
        change_seq: int,
        exported_at: datetime,
        *,
        members: bool = False,
    ) -> None:
        """Record an export as complete; with `members`, the staged members become the goal's
        members in the same transaction (so a killed export changes neither)."""

    # -- export members (exits) ----------------------------------------------
    @abstractmethod
    def export_members(
        self, connection: str, goal: str, *, after: str = "", limit: int = 10000
    ) -> list[str]:
        """Profile ids that were members at the goal's last export, in id order, after `after`."""

    @abstractmethod
    def stage_export_members(
        self, connection: str, goal: str, profile_ids: Sequence[str], *, fresh: bool = False
    ) -> None:
        """Add to the members a running export found (`fresh` drops what a killed run staged)."""

    # -- open multipart uploads ----------------------------------------------
    @abstractmethod
    def note_upload(self, upload: OpenUpload) -> None:
        """Remember a multipart upload as soon as S3 has given it an id."""

    @abstractmethod
    def forget_upload(self, upload_id: str) -> None:
        """The upload was completed or aborted: nothing is left in S3 to clean up."""

    @abstractmethod
    def open_uploads(self, connection: str, started_before: datetime) -> list[OpenUpload]:
        """The connection's uploads started before that moment and never completed or aborted."""
