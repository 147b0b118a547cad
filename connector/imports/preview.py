"""What a goal would do with a file, row by row, before anything is written."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from connector.config.connection import ImportGoal
from connector.engine.rows import RowChanges, RowPlan
from connector.errors import SourceError
from connector.formats import DelimitedReader, RowProblem, iter_decoded
from connector.goals.consent import has_consent
from connector.groups.model import ImportGroupsGoal
from connector.imports.files import goal_fingerprint, scan_files
from connector.sources import S3Credentials, s3_client
from connector.storage import ProfileStore, RowReject


@dataclass
class PreviewRow:
    line: int
    key: str | None
    target: str
    """"existing profile ...", "new profile", "no match (skipped)", or the reject reason."""
    cells: list[tuple[str, str, str, str, list[str]]] = field(default_factory=list)
    """(column, raw cell, property, rule, converted values)."""
    reject: RowReject | None = None


@dataclass
class Preview:
    key: str
    columns: list[str]
    rows: list[PreviewRow]


async def preview_file(
    credentials: S3Credentials,
    store: ProfileStore,
    connection_id: str,
    objectives: list[str],
    goal: ImportGoal,
    key: str | None,
    rows: int,
    *,
    read_limit: int = 4 << 20,
) -> Preview:
    """Parse the first `rows` rows of `key` (or the goal's first matching file)."""
    async with s3_client(credentials) as s3:
        if key is None:
            ledger = store.ledger(connection_id, goal.name)
            files = await scan_files(s3, goal, ledger, goal_fingerprint(goal, objectives))
            if not files:
                raise SourceError(
                    f"no file under prefix {goal.source.prefix!r} matches {goal.source.files}",
                    bucket=goal.source.bucket,
                )
            key = files[0].key
        chunks = [
            chunk async for chunk in _limited(s3.iter_object(goal.source.bucket, key), read_limit)
        ]
    text = iter_decoded(iter(chunks), encoding=goal.format.encoding, file=key)
    reader = DelimitedReader(text, goal.format, file=key)
    extra = goal.members.column if isinstance(goal, ImportGroupsGoal) and goal.members else None
    plan = RowPlan(goal, reader.columns, file=key, extra_column=extra)
    previews = []
    for record in itertools.islice(reader, rows):
        if isinstance(record, RowProblem):
            reject = RowReject(key, record.line, record.column, record.reason)
            previews.append(
                PreviewRow(record.line, None, f"rejected: {record.reason}", reject=reject)
            )
        else:
            previews.append(_describe(plan.parse(record), record.values, goal, store, objectives))
    return Preview(key, reader.columns, previews)


async def _limited(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """Stop downloading after `limit` bytes: a preview needs the first rows only."""
    total = 0
    async for chunk in chunks:
        yield chunk
        total += len(chunk)
        if total >= limit:
            return


def _describe(
    parsed: RowChanges | RowReject,
    raw: list[str],
    goal: ImportGoal,
    store: ProfileStore,
    objectives: list[str],
) -> PreviewRow:
    if isinstance(parsed, RowReject):
        column = f" (column {parsed.column})" if parsed.column else ""
        return PreviewRow(parsed.line, None, f"rejected{column}: {parsed.reason}", reject=parsed)
    cells = [
        (mapping.column, raw[mapping.index], mapping.property, mapping.rule_name, values)
        for mapping, values in parsed.cells
    ]
    if isinstance(goal, ImportGroupsGoal):
        group = store.get_group(goal.group_type, parsed.key)
        target = (
            f"existing {goal.group_type} {parsed.key}"
            if group
            else f"new {goal.group_type} {parsed.key}"
        )
        if parsed.extra:
            target += f"; members {', '.join(parsed.extra)}"
        return PreviewRow(parsed.line, parsed.key, target, cells)
    found = store.find_profiles(goal.match.property, parsed.key)
    if parsed.delete:
        target = (
            f"delete profile {found[0].id}" if found else "delete: no matching profile (skipped)"
        )
        return PreviewRow(parsed.line, parsed.key, target, cells)
    if found:
        target = f"existing profile {found[0].id}"
    elif goal.match.create_missing:
        target = "new profile"
    else:
        return PreviewRow(
            parsed.line,
            parsed.key,
            "no matching profile (row skipped; create_missing is off)",
            cells,
        )
    if objectives:
        after = _applied(found[0].properties if found else {}, parsed)
        if after is not None and not has_consent(after, objectives):
            target += f" (row skipped: no consent to {', '.join(objectives)})"
    return PreviewRow(parsed.line, parsed.key, target, cells)


def _applied(properties: dict[str, list[str]], parsed: RowChanges) -> dict[str, list[str]] | None:
    """The profile's properties as the row would leave them, or None if a rule refuses it."""
    after = dict(properties)
    for mapping, values in parsed.cells:
        try:
            after[mapping.property] = mapping.rule(after.get(mapping.property, []), values)
        except ValueError:
            return None
    return after
