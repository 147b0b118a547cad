"""Where an export lands in S3: the object key of the data file and of its manifest.

Two naming styles, as the customer-data platforms users know them:
`file_name: segment_timestamp` gives `<segment name>_<YYYYMMDDTHHMMSSZ>.csv`,
a new file each run that a partner can pick up without ever losing one;
any other `file_name` is a fixed name replaced by each run, for partners
that always read the same key. `.gz` and `.gpg` follow the content, so a
partner's tools know how to open the file from its name alone.

Segment names are written by analysts and may hold anything (`/`, `..`,
control characters, accents); keys are built from made-safe parts and then
normalised, so no segment name can move a file out of the configured folder.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime

from connector.config.goals import Destination

__all__ = [
    "MANIFEST_SUFFIX",
    "TIMESTAMP_NAMING",
    "clean_key",
    "data_key",
    "manifest_key",
    "safe_name",
    "timestamp",
]

TIMESTAMP_NAMING = "segment_timestamp"
MANIFEST_SUFFIX = ".manifest.json"
SEGMENT_NAME_MACRO = "%SEGMENT_NAME%"
SEGMENT_ID_MACRO = "%SEGMENT_ID%"

_UNSAFE = re.compile(r"(?:[^A-Za-z0-9._-]|\.\.+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_name(text: str, fallback: str = "export") -> str:
    """`text` as one key segment: ASCII letters, digits, `.`, `_`, `-` only.

    Accents are dropped (`Müller` → `Muller`) rather than replaced, so names
    stay readable; runs of anything else, `..` included, become one `_`. A
    name with nothing usable left (`..`, `///`) becomes `fallback`.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE.sub("_", ascii_text).strip("._-")
    return name or fallback


def clean_key(key: str) -> str:
    """An S3 key without control characters, empty, `.` or `..` segments, or a leading `/`."""
    parts = [part for part in _CONTROL.sub("", key).split("/") if part not in ("", ".", "..")]
    if not parts:
        raise ValueError(f"{key!r} leaves no usable object key")
    return "/".join(parts)


def timestamp(moment: datetime) -> str:
    """The UTC second of `moment` as `YYYYMMDDTHHMMSSZ`, sortable as text."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _expand(template: str, segment_id: str, segment_name: str) -> str:
    return template.replace(SEGMENT_NAME_MACRO, safe_name(segment_name, segment_id)).replace(
        SEGMENT_ID_MACRO, safe_name(segment_id)
    )


def _with_extensions(name: str, *, gzip: bool, encrypted: bool) -> str:
    """`name` + `.gz` and/or `.gpg` where missing, in that order, ignoring letter case."""
    sealed = encrypted and name.lower().endswith(".gpg")
    stem, seal = (name[:-4], name[-4:]) if sealed else (name, ".gpg" if encrypted else "")
    if gzip and not stem.lower().endswith(".gz"):
        stem += ".gz"
    return stem + seal


def data_key(
    destination: Destination,
    *,
    segment_id: str,
    segment_name: str,
    moment: datetime,
    gzip: bool,
    encrypted: bool,
) -> str:
    """The data file's key for an export started at `moment` (UTC).

    The macros work in `directory` and in a fixed `file_name` alike. A fixed
    name gets `.gz` / `.gpg` appended unless it already ends with them.
    """
    if destination.file_name == TIMESTAMP_NAMING:
        name = f"{safe_name(segment_name, safe_name(segment_id))}_{timestamp(moment)}.csv"
    else:
        name = _expand(destination.file_name, segment_id, segment_name)
    name = _with_extensions(name, gzip=gzip, encrypted=encrypted)
    directory = _expand(destination.directory, segment_id, segment_name)
    return clean_key(f"{directory}/{name}")


def manifest_key(key: str) -> str:
    """The manifest sits beside its data file: `<data key>.manifest.json`."""
    return key + MANIFEST_SUFFIX
