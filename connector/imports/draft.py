"""An import-profiles goal drafted from what `sniff` found, written as commented YAML.

Two placements, so that what is printed is valid where it goes:

* without a connection, a whole connection file (save it as
  `goals/ID.yaml`): an id, a name, a commented-out storage block and the goal;
* with `--connection ID`, the goal alone as a `goals:` list item, indented
  as in the example files, to paste at the end of that connection's list.

Every choice the sample did not settle carries a `CHECK` comment; evidence
for the others follows each line as a comment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from connector.config.goal_parts import PROFILE_ID
from connector.formats.sniff import ColumnGuess, SniffResult, snake_case
from connector.goals.consent import CONSENT_PROPERTY
from connector.imports.draft_sample import Sample

__all__ = ["GoalDraft", "render_connection", "render_goal_item", "source_of"]

PLACEHOLDER_BUCKET = "change-me"
_NUMBERED = re.compile(r"[0-9]+(?:[-_.:T][0-9]+)*")
_NAME_PARTS = re.compile(r"^(?P<stem>.*?)(?P<suffix>(?:\.[A-Za-z][A-Za-z0-9]{0,4})*)$")
_CONSENT_NAME = re.compile(r"consent|objective|permission|opt.?in")
_EMAIL_PROPERTY = re.compile(r"(^|_)e_?mail")
_WILDCARD_CHARACTERS = re.compile(r"[\[\]?*]")


@dataclass(frozen=True, slots=True)
class GoalDraft:
    """What the goal is called and where its files come from, beside the sniffed file."""

    name: str
    bucket: str
    prefix: str
    files: str
    result: SniffResult
    sample: Sample
    bucket_note: str = ""
    normalize: str | None = None
    """The match normalisation other goals already use for the same property."""
    objectives: tuple[str, ...] = ()
    """The connection's consent objectives: rows need `consented_objectives` to apply."""


def source_of(sample: Sample) -> tuple[str, str]:
    """`(prefix, wildcard)` for files like the sample: dates and counters become `*`."""
    path = PurePosixPath(sample.key if sample.key is not None else sample.name.replace("\\", "/"))
    prefix = f"{path.parent}/" if sample.key is not None and str(path.parent) != "." else ""
    parts = _NAME_PARTS.fullmatch(path.name)
    stem, suffix = (parts["stem"], parts["suffix"]) if parts else (path.name, "")
    wildcard = _NUMBERED.sub("*", _WILDCARD_CHARACTERS.sub("?", stem)) + suffix
    return prefix, wildcard


def goal_name_of(wildcard: str, taken: Collection[str]) -> str:
    """A goal name from the wildcard's letters (`customers-*.csv` -> customers), unused so far."""
    stem = _NAME_PARTS.fullmatch(wildcard)
    text = stem["stem"] if stem else wildcard
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", text.replace("*", "")).strip("-_.") or "import"
    return unused(base, taken)


def unused(base: str, taken: Collection[str], joiner: str = "-") -> str:
    """`base`, or `base-2`, `base-3`, ... whichever is not taken yet."""
    name, number = base, 2
    while name in taken:
        name, number = f"{base}{joiner}{number}", number + 1
    return name


# ---------------------------------------------------------------- rendering


def _yaml(value: Any) -> str:
    """One YAML value on one line (flow style), quoted only where YAML needs it.

    A text with a line break or another control character is written as a
    JSON string (valid YAML), so every mapping stays on its own line.
    """
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(key)}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(item) for item in value) + "]"
    if isinstance(value, str) and any(ord(char) < 32 or ord(char) == 127 for char in value):
        return json.dumps(value, ensure_ascii=False)
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True)
    return text.removesuffix("\n...\n").strip()


Line = tuple[str, str]
"""A YAML line and its trailing comment (empty for none)."""
_COMMENT_COLUMN = 64
"""Trailing comments line up after the lines shorter than this; longer lines keep two spaces."""


def _line(indent: int, text: str, comment: str = "") -> Line:
    return " " * indent + text, comment.replace("\n", " ")


def _aligned(lines: list[Line]) -> list[str]:
    """Trailing comments line up within each run of lines at one indentation (a block)."""
    out: list[str] = []
    start = 0
    while start < len(lines):
        indent = _indent(lines[start][0])
        end = start
        while end < len(lines) and _indent(lines[end][0]) == indent:
            end += 1
        block = lines[start:end]
        width = max(
            (len(text) for text, comment in block if comment and len(text) < _COMMENT_COLUMN),
            default=0,
        )
        out.extend(
            f"{text.ljust(width)}  # {comment}" if comment else text for text, comment in block
        )
        start = end
    return out


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _sample_summary(sample: Sample, result: SniffResult) -> str:
    if sample.truncated:
        size = f" of {_mib(sample.size)}" if sample.size is not None else ""
        read = f"the first {_mib(sample.read)}{size}"
    else:
        read = f"the whole file ({sample.read:,} bytes)"
    packed = ", gzip" if sample.compressed else ""
    return f"read {read}{packed}; {result.records:,} records sampled"


def _mib(count: int | None) -> str:
    return f"{(count or 0) / (1 << 20):.1f} MiB"


def render_goal_item(draft: GoalDraft, *, indent: int = 2) -> list[str]:
    """The goal as one `goals:` list item, `indent` spaces in (the examples use 2)."""
    return _aligned(_goal_lines(draft, indent))


def _goal_lines(draft: GoalDraft, indent: int) -> list[Line]:
    result = draft.result
    at = indent + 2
    lines = [_line(indent, "- type: import-profiles")]
    lines.append(_line(at, f"name: {_yaml(draft.name)}"))
    source = {"bucket": draft.bucket, "prefix": draft.prefix, "files": [draft.files]}
    lines.append(_line(at, f"source: {_yaml(source)}", draft.bucket_note))
    lines.extend(_format_lines(result, at))
    lines.extend(_match_lines(draft, at))
    mappings = _mapping_lines(result, at + 2, consent=bool(draft.objectives))
    if mappings:
        lines.append(_line(at, "mappings:"))
        lines.extend(mappings)
    else:
        note = "CHECK: the sample has no column besides the identifier"
        lines.append(_line(at, "map_all_columns: true", note))
    if draft.objectives and not any(_CONSENT_NAME.search(c.name.lower()) for c in result.columns):
        lines.append(
            _line(
                at,
                f"# CHECK: the connection applies rows only for profiles that consented to "
                f"{', '.join(draft.objectives)}: map a column to {CONSENT_PROPERTY}",
            )
        )
    for warning in result.warnings:
        lines.append(_line(at, f"# CHECK: {warning}"))
    if result.ragged:
        shown = ", ".join(str(number) for number in result.ragged[:5])
        lines.append(
            _line(
                at,
                f"# CHECK: {len(result.ragged)} sampled record(s) have another number of fields "
                f"than the header (data records {shown}); the import rejects them",
            )
        )
    return lines


def _format_lines(result: SniffResult, at: int) -> list[Line]:
    lines = [_line(at, "format:")]
    inner = at + 2
    encoding = result.encoding
    lines.append(_line(inner, f"encoding: {_yaml(encoding.value)}", encoding.evidence))
    for key, finding in (
        ("field_separator", result.field_separator),
        ("quote_char", result.quote_char),
        ("decimal_separator", result.decimal_separator),
        ("multi_value_separator", result.multi_value_separator),
    ):
        lines.append(_line(inner, f"{key}: {_yaml(finding.value)}", finding.evidence))
    ambiguous = any(
        c.ambiguous and c.date_format == result.date_format.value for c in result.columns
    )
    date_note = ("CHECK: " if ambiguous else "") + result.date_format.evidence
    lines.append(_line(inner, f"date_format: {_yaml(result.date_format.value)}", date_note))
    naive = (
        any(c.value_type == "datetime" for c in result.columns)
        or result.date_format.value != "iso8601"
    )
    zone_note = "CHECK: date-times without an offset are read in this zone" if naive else ""
    lines.append(_line(inner, "timezone: UTC", zone_note))
    header = "true" if result.has_header else "false"
    lines.append(_line(inner, f"header: {header}", result.header.evidence))
    if not result.has_header:
        names = [c.name for c in result.columns]
        lines.append(_line(inner, f"columns: {_yaml(names)}", "CHECK: name the columns"))
    return lines


def _match_property(result: SniffResult) -> tuple[str, str]:
    """The identifier column and the property it matches (snake_case; profile_id as such)."""
    index = result.identifier if result.identifier is not None else 0
    column = result.columns[index].name if result.columns else "id"
    prop = snake_case(column)
    return column, PROFILE_ID if prop == PROFILE_ID else prop


def _match_lines(draft: GoalDraft, at: int) -> list[Line]:
    result = draft.result
    column, prop = _match_property(result)
    match: dict[str, Any] = {"column": column, "property": prop, "create_missing": True}
    if draft.normalize and draft.normalize != "trim" and prop != PROFILE_ID:
        match["normalize"] = draft.normalize
    note = result.identifier_evidence
    if result.identifier is None:
        note = f"CHECK: {note}; the first column is a placeholder"
    elif draft.normalize and draft.normalize != "trim":
        note += f"; normalize {draft.normalize} as the other goals matching {prop}"
    elif _EMAIL_PROPERTY.search(prop):
        note += "; e-mail addresses: consider normalize: email"
    return [_line(at, f"match: {_yaml(match)}", note)]


def _mapping_lines(result: SniffResult, at: int, *, consent: bool) -> list[Line]:
    key_column, key_property = _match_property(result)
    taken = {key_property}
    lines = []
    for column in result.columns:
        if column.name == key_column:
            continue
        prop = unused(snake_case(column.name), taken, "_")
        taken.add(prop)
        notes = _notes(column)
        if consent and _CONSENT_NAME.search(column.name.lower()):
            hint = f"CHECK: consent for this connection is read from {CONSENT_PROPERTY} (rule add)"
            notes = f"{hint}; {notes}" if notes else hint
        lines.append(_line(at, f"- {_yaml(_mapping(column, prop, result))}", notes))
    return lines


def _mapping(column: ColumnGuess, prop: str, result: SniffResult) -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "column": column.name,
        "property": prop,
        "rule": "set",
        "type": column.value_type,
    }
    if column.date_format is not None and column.date_format != result.date_format.value:
        mapping["date_format"] = column.date_format
    return mapping


def _notes(column: ColumnGuess) -> str:
    notes = list(column.notes)
    if column.ambiguous:
        notes = ["CHECK: " + "; ".join(notes)]
    return "; ".join(notes)


def render_connection(draft: GoalDraft, connection_id: str, *, goals_dir: str = "goals") -> str:
    """A whole connection file holding the drafted goal (no storage: the defaults apply)."""
    sample, result = draft.sample, draft.result
    lines = [
        "# yaml-language-server: $schema=./connection.schema.json",
        f"# Drafted by `connector draft` from {sample.name}: {_sample_summary(sample, result)}.",
        f"# Save as {goals_dir}/{connection_id}.yaml, look at each CHECK, then run",
        f"# `connector validate` and `connector preview {connection_id} {draft.name}`.",
        f"id: {_yaml(connection_id)}",
        f"name: {_yaml(f'Drafted from {PurePosixPath(sample.name).name}')}",
        "# storage:                        # S3 access; without it the AWS default chain applies",
        "#   region: eu-west-1",
        "#   endpoint_url: ${S3_ENDPOINT:-}  # S3-compatible storage; empty: AWS itself",
        "#   access_key_id: ${S3_KEY_ID}",
        "#   secret_access_key: ${S3_SECRET}",
        "goals:",
        *render_goal_item(draft),
    ]
    return "\n".join(lines) + "\n"


def render_goal_for(draft: GoalDraft, connection_id: str, file_name: str) -> str:
    """The goal as a list item to paste at the end of `goals:` in the connection's file."""
    sample, result = draft.sample, draft.result
    lines = [
        f"# Drafted by `connector draft` from {sample.name}: {_sample_summary(sample, result)}.",
        f"# Paste at the end of `goals:` in {file_name} (connection {connection_id}), look at",
        f"# each CHECK, then run `connector validate` and `connector preview {connection_id} "
        f"{draft.name}`.",
        *render_goal_item(draft),
    ]
    return "\n".join(lines) + "\n"


def existing_normalize(goals: Iterable[tuple[str, str]], prop: str) -> str | None:
    """The normalize of goals already matching on `prop` (`(property, normalize)` pairs)."""
    return next((normalize for name, normalize in goals if name == prop), None)


def match_property_of(result: SniffResult) -> str:
    """The property the drafted goal will match on."""
    return _match_property(result)[1]
