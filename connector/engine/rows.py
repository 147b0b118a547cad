"""From a parsed record to the changes it asks for: convert, split, name the target property.

A `RowPlan` is built once per file from the goal and the file's header, so
the per-row work is a loop over precompiled mappings. A row either becomes
a `RowChanges` or a `RowReject` naming the line, the column and the reason:
errors are values, the rest of the file goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from connector.config.formats import ImportFormat
from connector.config.goal_parts import Mapping, ValueType
from connector.engine.value_rules import RULES, Rule
from connector.errors import FormatError
from connector.formats import ConversionError, Row, RowProblem, make_converter
from connector.formats.keys import key_normalizer
from connector.formats.separators import wrong_separator_hint
from connector.groups.model import ImportGroupsGoal
from connector.imports.model import ImportProfilesGoal
from connector.storage import RowReject


def _format_for(mapping: Mapping, fmt: ImportFormat) -> ImportFormat:
    if mapping.date_format is None or mapping.date_format == fmt.date_format:
        return fmt
    return fmt.model_copy(update={"date_format": mapping.date_format})


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    index: int
    column: str
    property: str
    rule_name: str
    rule: Rule
    convert: Callable[[str], str]
    split: str | None
    """The multi-value separator, or None for columns that hold one value (sum)."""
    value_type: ValueType
    format: ImportFormat
    """The goal's format with this mapping's own date_format, for the columnar engine."""


@dataclass(slots=True)
class RowChanges:
    """A row ready to apply: whose it is (`key`) and each property's incoming values."""

    line: int
    key: str
    cells: list[tuple[CompiledMapping, list[str]]]
    extra: list[str]
    """Values of the goal's extra column (group members), split and stripped."""
    delete: bool = False
    """The goal's delete column says: remove this profile."""


def stage_rules(
    row: RowChanges,
    current: dict[str, list[str]],
    *,
    file: str,
    check: Callable[[str, list[str]], str | None] | None = None,
) -> dict[str, list[str]] | RowReject:
    """The row's new values by property, or the reject of the first mapping that refuses it.

    Each mapping's rule runs on `current` (the stored properties) as the
    earlier mappings of the row left them; only changed properties are
    returned. `check` may refuse a property's values after its rule, with the
    reason (a unique value that belongs to another profile).
    """
    staged: dict[str, list[str]] = {}
    for mapping, values in row.cells:
        name = mapping.property
        before = staged.get(name, current.get(name, []))
        try:
            after = mapping.rule(before, values)
        except ValueError as error:
            return RowReject(file, row.line, mapping.column, str(error))
        if after != before:
            staged[name] = after
        reason = None if check is None else check(name, after)
        if reason is not None:
            return RowReject(file, row.line, mapping.column, reason)
    return staged


class RowPlan:
    """How one file's rows map to property changes, checked against its header."""

    def __init__(
        self,
        goal: ImportProfilesGoal | ImportGroupsGoal,
        columns: list[str],
        *,
        file: str,
        extra_column: str | None = None,
    ) -> None:
        self.file = file
        positions = {name: index for index, name in enumerate(columns)}
        wanted = [goal.match.column, *(m.column for m in goal.mappings)]
        if extra_column:
            wanted.append(extra_column)
        delete_column = getattr(goal, "delete_column", None)
        if delete_column:
            wanted.append(delete_column)
        missing = sorted({name for name in wanted if name not in positions})
        if missing:
            hint = wrong_separator_hint(columns, goal.format.field_separator)
            raise FormatError(
                hint
                or f"the header has no column {', '.join(map(repr, missing))} "
                f"(columns: {', '.join(columns)})",
                file=file,
                line=1 if goal.format.header else None,
            )
        self.key_index = positions[goal.match.column]
        self.key_column = goal.match.column
        self.extra_index = positions[extra_column] if extra_column else None
        self.extra_column = extra_column
        self.delete_index = positions[delete_column] if delete_column else None
        self.delete_column = delete_column
        self._is_true = make_converter("boolean", goal.format)
        normalize = getattr(goal.match, "normalize", "trim")
        self._normalize_key = None if normalize == "trim" else key_normalizer(normalize)
        mappings = list(goal.mappings)
        if goal.map_all_columns:
            taken = {goal.match.column, extra_column, delete_column, *(m.column for m in mappings)}
            mappings += [
                Mapping(column=name, property=f"{goal.property_prefix}{name}", rule="set")
                for name in columns
                if name not in taken
            ]
        separator = goal.format.multi_value_separator
        types = [mapping.value_type for mapping in mappings]
        self.mappings = [
            CompiledMapping(
                index=positions[mapping.column],
                column=mapping.column,
                property=mapping.property,
                rule_name=mapping.rule,
                rule=RULES[mapping.rule],
                convert=make_converter(mapping.value_type, _format_for(mapping, goal.format)),
                split=None if mapping.rule == "sum" else separator,
                value_type=mapping.value_type,
                format=_format_for(mapping, goal.format),
            )
            for mapping in mappings
        ]
        self.separator = separator
        self._steps = [
            (mapping, mapping.index, None if types[i] == "text" else mapping.convert, mapping.split)
            for i, mapping in enumerate(self.mappings)
        ]

    def parse(self, row: Row) -> RowChanges | RowReject:
        values = row.values
        key = values[self.key_index].strip()
        if not key:
            return RowReject(self.file, row.line, self.key_column, "the identifier is empty")
        if self._normalize_key is not None:
            try:
                key = self._normalize_key(key)
            except ConversionError as error:
                return RowReject(self.file, row.line, self.key_column, str(error))
        if self.delete_index is not None:
            flag = values[self.delete_index].strip()
            if flag:
                try:
                    delete = self._is_true(flag) == "true"
                except ConversionError as error:
                    return RowReject(self.file, row.line, self.delete_column, str(error))
                if delete:
                    return RowChanges(row.line, key, [], [], delete=True)
        cells: list[tuple[CompiledMapping, list[str]]] = []
        for mapping, index, convert, split in self._steps:
            text = values[index]
            if not text:
                continue
            try:
                if split is not None and split in text:
                    pieces = [piece for piece in map(str.strip, text.split(split)) if piece]
                    if not pieces:
                        continue
                    if convert is not None:
                        pieces = list(map(convert, pieces))
                else:
                    text = text.strip()
                    if not text:
                        continue
                    pieces = [text if convert is None else convert(text)]
            except ConversionError as error:
                return RowReject(self.file, row.line, mapping.column, str(error))
            cells.append((mapping, pieces))
        extra: list[str] = []
        if self.extra_index is not None:
            text = values[self.extra_index]
            extra = [piece for piece in map(str.strip, text.split(self.separator)) if piece]
        return RowChanges(row.line, key, cells, extra)

    def rows(
        self, records: Iterable[Row | RowProblem], counter: list[int]
    ) -> Iterator[RowChanges | RowReject]:
        """Parse every record; `counter[0]` counts records read (for progress and history)."""
        for record in records:
            counter[0] += 1
            if isinstance(record, RowProblem):
                yield RowReject(self.file, record.line, record.column, record.reason)
            else:
                yield self.parse(record)
