"""A deterministic customer file: N rows, 12 columns, `;`-separated, some nasty quoting."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

COLUMNS = [
    "customer_id",
    "email",
    "first_name",
    "last_name",
    "birth_date",
    "last_seen",
    "city",
    "country",
    "score",
    "spent",
    "interests",
    "vip",
]
_FIRST = [
    "Anna",
    "Bram",
    "Carla",
    "Dirk",
    "Eva",
    "Finn",
    "Gert",
    "Hanna",
    "Ilse",
    "Joost",
    "Kees",
    "Lotte",
]
_LAST = [
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "Bos",
    "Peters",
]
_CITIES = [
    "Amsterdam",
    "Rotterdam",
    "Utrecht",
    "Den Haag",
    "Eindhoven",
    "Gent",
    "Antwerpen",
    "Köln",
]
_COUNTRIES = ["NL", "BE", "DE", "FR"]
_INTERESTS = ["newsletter", "running", "cycling", "travel", "cooking", "music", "books", "garden"]


def rows(count: int, seed: int = 42, start: int = 0) -> list[str]:
    """Lines of the file (header first), built deterministically from `seed`."""
    rng = random.Random(seed)
    lines = [";".join(COLUMNS) + "\n"]
    for number in range(start, start + count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city = rng.choice(_CITIES)
        if number % 97 == 0:
            city = f'"{city}; centrum"'  # an embedded separator
        if number % 1009 == 0:
            last = f'"{last}\nline two ""quoted"""'  # an embedded newline and quotes
        interests = "|".join(rng.sample(_INTERESTS, rng.randint(0, 3)))
        lines.append(
            f"C{number:08d};{first.lower()}.{number}@example.com;{first};{last};"
            f"{rng.randint(1, 28):02d}-{rng.randint(1, 12):02d}-{rng.randint(1940, 2006)};"
            f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
            f"{rng.randint(0, 59):02d}:00+01:00;"
            f"{city};{rng.choice(_COUNTRIES)};{rng.randint(0, 99)},{rng.randint(0, 99):02d};"
            f"{rng.randint(0, 5000)},{rng.randint(0, 99):02d};{interests};"
            f"{'true' if rng.random() < 0.1 else 'false'}\n"
        )
    return lines


def write_file(
    path: Path, count: int, *, compress: bool = False, seed: int = 42, first: int = 0
) -> Path:
    """Write the file in blocks so even 5M rows never sit in memory at once.

    `first` is the number of the first customer: a file from `first=N` holds
    other customers than one of N rows from 0, drawn from the same seeds.
    """
    opener = gzip.open if compress else open
    with opener(path, "wt", encoding="utf-8", newline="") as out:
        block = 100_000
        for start in range(0, count, block):
            lines = rows(min(block, count - start), seed=seed + start, start=first + start)
            out.writelines(lines if start == 0 else lines[1:])
    return path
