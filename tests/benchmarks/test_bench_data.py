"""The benchmark's data is deterministic and as nasty as the issue asks (quotes, newlines)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

from bench.data import COLUMNS, write_file


def _rows(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:  # type: ignore[operator]
        return list(csv.reader(handle, delimiter=";"))


def test_the_generated_file_has_the_asked_rows_and_twelve_columns(tmp_path: Path) -> None:
    rows = _rows(write_file(tmp_path / "c.csv", 2500))

    assert rows[0] == COLUMNS
    assert len(rows) == 2501
    assert {len(row) for row in rows} == {12}
    assert len({row[0] for row in rows[1:]}) == 2500  # customer ids are unique


def test_the_same_seed_gives_the_same_bytes_plain_and_gzip(tmp_path: Path) -> None:
    first = write_file(tmp_path / "a.csv", 1200).read_bytes()
    second = write_file(tmp_path / "b.csv", 1200).read_bytes()
    packed = write_file(tmp_path / "c.csv.gz", 1200, compress=True)

    assert first == second
    assert gzip.decompress(packed.read_bytes()) == first


def test_some_fields_carry_separators_quotes_and_newlines(tmp_path: Path) -> None:
    rows = _rows(write_file(tmp_path / "c.csv", 2100))

    cells = [cell for row in rows[1:] for cell in row]
    assert any(";" in cell for cell in cells)
    assert any("\n" in cell for cell in cells)
    assert any('"' in cell for cell in cells)
    assert any("," in row[8] for row in rows[1:])  # decimal comma
    assert any("|" in row[10] for row in rows[1:])  # multi-value
