"""Where an export lands in S3: the object keys of the data file (or its parts) and manifest.

Three naming styles, as the customer-data platforms users know them:
`file_name: segment_timestamp` gives `<segment name>_<YYYYMMDDTHHMMSSZ>.csv`,
a new file each run that a partner can pick up without ever losing one;
`file_name: {pattern: ...}` builds the name from Adobe-style tokens (see
`FILE_NAME_MACROS`), a new file each run when it holds %DATETIME% or
%TIMESTAMP%; any other `file_name` is a fixed name replaced by each run, for
partners that always read the same key. `.gz` and `.gpg` follow the content,
so a partner's tools know how to open the file from its name alone.

A split export (`max_rows_per_file`) numbers its parts by inserting
`_partNNNN` (from 0001; more digits past 9999) before the file's extension:
`profiles.csv.gz` → `profiles_part0001.csv.gz`. Its one manifest keeps the
unsplit name, `profiles.csv.gz.manifest.json`, so it sorts beside the parts.

Segment names are written by analysts and may hold anything (`/`, `..`,
control characters, accents); keys are built from made-safe parts and then
normalised, so no segment name can move a file out of the configured folder.
What only the run knows (a long segment name) is checked against S3's key
limit and the file-name limit of partners' disks before anything is written:
`run_keys` builds and checks one run's `RunKeys`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from connector.errors import ConnectorError
from connector.exports._destination import (
    CUSTOM_TEXT_MACRO,
    DATETIME_MACRO,
    DESTINATION_MACRO,
    EXITED_SUFFIX,
    MANIFEST_SUFFIX,
    MAX_KEY_BYTES,
    MAX_NAME_BYTES,
    SEGMENT_ID_MACRO,
    SEGMENT_NAME_MACRO,
    SEGMENT_TIMESTAMP,
    TIMESTAMP_MACRO,
    Destination,
    FileNamePattern,
)
from connector.exports.model import ExportProfilesGoal

__all__ = [
    "MANIFEST_SUFFIX",
    "TIMESTAMP_NAMING",
    "ObjectKeyError",
    "RunKeys",
    "check_key",
    "clean_key",
    "data_key",
    "exited_key",
    "manifest_key",
    "part_key",
    "part_number",
    "parts_prefix",
    "run_keys",
    "safe_name",
    "timestamp",
]

TIMESTAMP_NAMING = SEGMENT_TIMESTAMP

_UNSAFE = re.compile(r"(?:[^A-Za-z0-9._-]|\.\.+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MACRO = re.compile(r"%[A-Z_]+%")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,4}$")
_CONTENT_EXTENSIONS = (".gpg", ".gz")


class ObjectKeyError(ConnectorError):
    """The key this run would write breaks S3's rules; nothing was uploaded."""


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


def check_key(key: str) -> str:
    """`key` if S3 and partners' disks accept it, else ObjectKeyError saying which limit."""
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise ObjectKeyError(
            f"the object key {_shortened(key)!r} is {size} bytes; S3 allows {MAX_KEY_BYTES}: "
            "shorten the directory or file name, or the segment name they use"
        )
    name = key.rpartition("/")[2]
    name_size = len(name.encode("utf-8"))
    if name_size > MAX_NAME_BYTES:
        raise ObjectKeyError(
            f"the file name {_shortened(name)!r} is {name_size} bytes; file names are limited "
            f"to {MAX_NAME_BYTES}: shorten the file name, or the segment name it uses"
        )
    return key


def _shortened(text: str, keep: int = 60) -> str:
    return text if len(text) <= 2 * keep else f"{text[:keep]}…{text[-keep:]}"


def timestamp(moment: datetime) -> str:
    """The UTC second of `moment` as `YYYYMMDDTHHMMSSZ`, sortable as text."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _segment_macros(segment_id: str, segment_name: str) -> dict[str, str]:
    return {
        SEGMENT_NAME_MACRO: safe_name(segment_name, segment_id),
        SEGMENT_ID_MACRO: safe_name(segment_id),
    }


def _expand(template: str, values: dict[str, str]) -> str:
    return _MACRO.sub(lambda match: values.get(match.group(), match.group()), template)


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
    goal_name: str = "export",
) -> str:
    """The data file's key for an export started at `moment` (UTC), before any part number.

    The segment macros work in `directory` and in a fixed `file_name` alike;
    a pattern has every token. A fixed name or pattern gets `.gz` / `.gpg`
    appended unless it already ends with them.
    """
    segment_values = _segment_macros(segment_id, segment_name)
    file_name = destination.file_name
    if isinstance(file_name, FileNamePattern):
        moment_utc = moment.astimezone(UTC)
        values = {
            **segment_values,
            DESTINATION_MACRO: safe_name(goal_name),
            DATETIME_MACRO: moment_utc.strftime("%Y%m%d_%H%M%S"),
            TIMESTAMP_MACRO: str(int(moment_utc.timestamp())),
            CUSTOM_TEXT_MACRO: file_name.custom_text or "",
        }
        name = _expand(file_name.pattern, values)
    elif file_name == TIMESTAMP_NAMING:
        name = f"{safe_name(segment_name, safe_name(segment_id))}_{timestamp(moment)}.csv"
    else:
        name = _expand(file_name, segment_values)
    name = _with_extensions(name, gzip=gzip, encrypted=encrypted)
    directory = _expand(destination.directory, segment_values)
    return clean_key(f"{directory}/{name}")


def part_key(key: str, number: int) -> str:
    """The key of part `number` (from 1) of a split export whose unsplit key is `key`.

    `_partNNNN` goes before the content extensions (`.gz`, `.gpg`) and one
    short alphabetic extension such as `.csv`, so the part keeps the type a
    partner's tools recognise; a name without one gets it at the end.
    """
    return _before_extensions(key, f"_part{number:04d}")


def exited_key(key: str) -> str:
    """The key of the exits file beside the data file `key` (`exits: file`): `_exited` goes
    where a part number would, so `profiles.csv.gz` → `profiles_exited.csv.gz`, and its parts
    are `profiles_exited_part0001.csv.gz`."""
    return _before_extensions(key, EXITED_SUFFIX)


def _before_extensions(key: str, text: str) -> str:
    folder, slash, name = key.rpartition("/")
    stem, tail = name, ""
    for extension in _CONTENT_EXTENSIONS:
        if stem.lower().endswith(extension):
            stem, tail = stem[: -len(extension)], stem[-len(extension) :] + tail
    extension_match = _EXTENSION.search(stem)
    if extension_match is not None:
        stem, tail = stem[: extension_match.start()], extension_match.group() + tail
    return f"{folder}{slash}{stem}{text}{tail}"


def manifest_key(key: str) -> str:
    """The manifest sits beside its data file: `<data key>.manifest.json`."""
    return key + MANIFEST_SUFFIX


def _around_part_number(key: str) -> tuple[str, str]:
    head, _, tail = part_key(key, 1).rpartition("_part0001")
    return head, tail


def parts_prefix(key: str) -> str:
    """What every part key of the split export `key` starts with, to list them."""
    return _around_part_number(key)[0] + "_part"


def part_number(key: str, candidate: str) -> int | None:
    """The number of `candidate` if it is a part key of the split export `key`, else None."""
    head, tail = _around_part_number(key)
    match = re.fullmatch(re.escape(head) + r"_part([0-9]{4,})" + re.escape(tail), candidate)
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RunKeys:
    """The keys of one run: `base` is the unsplit data key, the manifest's stem."""

    base: str
    split: bool

    def part(self, number: int) -> str:
        return check_key(part_key(self.base, number) if self.split else self.base)

    @property
    def manifest(self) -> str:
        return check_key(manifest_key(self.base))

    def exited(self) -> RunKeys:
        """The keys of the `_exited` sibling (`exits: file`)."""
        return RunKeys(exited_key(self.base), self.split)


def run_keys(goal: ExportProfilesGoal, segment_name: str, moment: datetime) -> RunKeys:
    """The run's keys, the first part's and the manifest's checked before anything is built."""
    keys = RunKeys(
        data_key(
            goal.destination,
            segment_id=goal.segment,
            segment_name=segment_name,
            moment=moment,
            gzip=goal.compression == "gzip",
            encrypted=goal.encryption is not None,
            goal_name=goal.name,
        ),
        split=goal.max_rows_per_file is not None,
    )
    for checked in [keys, keys.exited()] if goal.exits_mode == "file" else [keys]:
        checked.part(1)
        if goal.manifest:
            check_key(checked.manifest)
    return keys
