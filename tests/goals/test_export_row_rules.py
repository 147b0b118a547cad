"""`dedupe_by` and `required`: which rows of an export run are written."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from helpers import BUCKET, Harness, config_problems, read_text, save

from connector.config.formats import ExportFormat
from connector.exports.columns import RowRules
from connector.storage import Profile, RunStatus

SHA256_ANN = "30c2ac0577fb54c0925c09dc8e6b6d350137bbcab6ddd6c42b1eba7426f61cff"
SHA256_0612345678 = "eb8ee2449ad37fd3d1afc82aa7bf19407837e3b8b77a7841c1ac7ad6b611394b"
COLUMNS = [
    {"header": "id", "value": "profile_id"},
    {"header": "email", "property": "email"},
    {"header": "country", "property": "country"},
    {"header": "phone", "property": "phone"},
]


def export_goal(**settings: Any) -> dict[str, Any]:
    goal: dict[str, Any] = {
        "type": "export-profiles",
        "name": "out",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": "profiles.csv"},
        "columns": COLUMNS,
    }
    goal.update(settings)
    return goal


# -- dedupe_by -----------------------------------------------------------------------------


async def test_dedupe_by_writes_one_row_per_distinct_value_and_the_first_wins(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal(dedupe_by=["email"]))
    save(
        harness,
        Profile("p1", {"email": ["a@x"], "country": ["NL"]}),
        Profile("p2", {"email": ["b@x"]}),
        Profile("p3", {"email": ["a@x"], "country": ["BE"]}),
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    assert await read_text(harness) == "id,email,country,phone\np1,a@x,NL,\np2,b@x,,\n"
    assert outcome.record.counts.profiles_exported == 2


async def test_dedupe_spans_the_batches_and_parts_of_one_run(harness: Harness) -> None:
    harness.write_connection(export_goal(dedupe_by=["email"], max_rows_per_file=2))
    emails = ["a", "b", "a", "c", "b", "d"]
    save(harness, *(Profile(f"p{i}", {"email": [e]}) for i, e in enumerate(emails)))

    await harness.run(batch_size=2)

    assert await read_text(harness, "out/profiles_part0001.csv") == (
        "id,email,country,phone\np0,a,,\np1,b,,\n"
    )
    assert await read_text(harness, "out/profiles_part0002.csv") == (
        "id,email,country,phone\np3,c,,\np5,d,,\n"
    )
    assert sorted(await harness.listed("out/")) == [
        "out/profiles_part0001.csv",
        "out/profiles_part0002.csv",
    ]


async def test_dedupe_by_several_columns_keeps_each_distinct_combination(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal(dedupe_by=["email", "country"]))
    save(
        harness,
        Profile("p1", {"email": ["a@x"], "country": ["NL"]}),
        Profile("p2", {"email": ["a@x"], "country": ["BE"]}),
        Profile("p3", {"email": ["a@x"], "country": ["NL"]}),
        Profile("p4", {"email": ["a@x"], "country": ["N", "L"]}),
    )

    await harness.run()

    assert await read_text(harness) == (
        "id,email,country,phone\np1,a@x,NL,\np2,a@x,BE,\np4,a@x,N|L,\n"
    )


async def test_dedupe_compares_written_values_so_hashed_identities_match_after_normalising(
    harness: Harness,
) -> None:
    columns = [
        {"header": "id", "value": "profile_id"},
        {"header": "email", "property": "email", "hash": "email_lc_sha256"},
    ]
    harness.write_connection(export_goal(columns=columns, dedupe_by=["email"]))
    save(
        harness,
        Profile("p1", {"email": ["Ann@X.nl"]}),
        Profile("p2", {"email": [" ann@x.nl "]}),
    )

    await harness.run()

    assert await read_text(harness) == f"id,email\np1,{SHA256_ANN}\n"


async def test_a_missing_dedupe_value_is_one_value_like_any_other(harness: Harness) -> None:
    harness.write_connection(export_goal(dedupe_by=["email"]))
    save(harness, Profile("p1", {"phone": ["1"]}), Profile("p2", {"phone": ["2"]}))

    await harness.run()

    assert await read_text(harness) == "id,email,country,phone\np1,,,1\n"


async def test_each_run_dedupes_on_its_own(harness: Harness) -> None:
    harness.write_connection(export_goal(dedupe_by=["email"]))
    save(harness, Profile("p1", {"email": ["a@x"]}), Profile("p2", {"email": ["a@x"]}))
    await harness.run()

    second = await harness.run()

    assert second.record.counts.profiles_exported == 1
    assert await read_text(harness) == "id,email,country,phone\np1,a@x,,\n"


# -- required ------------------------------------------------------------------------------


async def test_a_profile_without_a_value_in_every_required_column_is_not_exported(
    harness: Harness,
) -> None:
    columns = [*COLUMNS, {"header": "phone_sha", "property": "phone", "hash": "phone_sha256"}]
    harness.write_connection(export_goal(columns=columns, required=["email", "phone_sha"]))
    save(
        harness,
        Profile("both", {"email": ["a@x"], "phone": ["06 1234 5678"]}),
        Profile("no-phone", {"email": ["b@x"]}),
        Profile("empty-phone", {"email": ["c@x"], "phone": [""]}),
        Profile("phone-without-digits", {"email": ["d@x"], "phone": ["n/a"]}),
        Profile("empty-email", {"email": [""], "phone": ["06 1234 5678"]}),
    )

    outcome = await harness.run()

    assert (await read_text(harness)).splitlines()[1:] == [
        f"both,a@x,,06 1234 5678,{SHA256_0612345678}"
    ]
    assert outcome.record.counts.profiles_exported == 1


async def test_a_row_dropped_for_a_required_column_does_not_claim_its_dedupe_key(
    harness: Harness,
) -> None:
    harness.write_connection(export_goal(required=["phone"], dedupe_by=["email"]))
    save(
        harness,
        Profile("p1", {"email": ["a@x"]}),
        Profile("p2", {"email": ["a@x"], "phone": ["1"]}),
    )

    await harness.run()

    assert await read_text(harness) == "id,email,country,phone\np2,a@x,,1\n"


# -- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            "dedupe_by: [email, mail]",
            "goals[0].dedupe_by[1]: 'mail' is not a column header (headers: id, email)",
        ),
        ("required: [email, email]", "goals[0].required[1]: 'email' is listed twice"),
        ("dedupe_by: email", "goals[0].dedupe_by: Input should be a valid list"),
    ],
)
def test_dedupe_by_and_required_must_name_column_headers(
    tmp_path: Path, rules: str, message: str
) -> None:
    problems = config_problems(
        tmp_path,
        f"""
        goals:
          - type: export-profiles
            name: out
            destination: {{bucket: crm-in}}
            columns:
              - {{header: id, value: profile_id}}
              - {{header: email, property: email}}
            {rules}
        """,
    )

    assert problems == [f"crm.yaml:8: {message}"]


# -- memory --------------------------------------------------------------------------------


def test_dedupe_keeps_a_small_fixed_size_digest_per_key_whatever_the_value_size() -> None:
    rules = RowRules(["id", "note"], ExportFormat(), dedupe_by=["note"])
    keys = 20_000
    padding = "x" * 4096
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for index in range(keys):
            assert rules.admit([str(index), f"{index}{padding}"])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert held / keys < 160
    assert not rules.admit(["again", f"7{padding}"])
    assert rules.duplicates == 1
