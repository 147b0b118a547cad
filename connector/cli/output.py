"""Printing for people (aligned text) and for programs (JSON, one object a line)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def print_json(data: Any, *, stream: TextIO | None = None) -> None:
    (stream or sys.stdout).write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def print_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, stream: TextIO | None = None
) -> None:
    """A plain aligned table: readable in a terminal, greppable in a pipe."""
    stream = stream or sys.stdout
    cells = [[str(value) if value is not None else "" for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    line = "  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True))
    stream.write(line.rstrip() + "\n")
    for row in cells:
        stream.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


def print_properties(
    properties: dict[str, list[str]], *, indent: str = "  ", stream: TextIO | None = None
) -> None:
    stream = stream or sys.stdout
    width = max((len(name) for name in properties), default=0)
    for name in sorted(properties):
        stream.write(f"{indent}{name.ljust(width)}  {' | '.join(properties[name])}\n")


def fail(message: str, *, stream: TextIO | None = None) -> None:
    (stream or sys.stderr).write(f"error: {message}\n")
