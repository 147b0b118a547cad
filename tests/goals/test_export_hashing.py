"""Identity hashing on export (`hash:` on a column): known SHA-256 digests, end to end on moto."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import BUCKET, Harness, config_problems, read_text, save

from connector.exports.columns import hasher
from connector.storage import Profile, RunStatus

SHA256_TEST_AT_EXAMPLE = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
SHA256_TEST_AT_EXAMPLE_CAPITALISED = (
    "de0683f2389441536c37c76c95a3932591e7fef915b531ebdccc944add3a5afb"
)
SHA256_ZOE_LOWER = "5418899f7aabe5f45dd3350fe8edcf89e1763a9e64c85e529b1f68cbf5144767"
SHA256_PLUS_31_612345678 = "fab7be8a931d1088a82f6acf9e468aaf6a3accc07d5112ee5d6fca93281e1583"
SHA256_31_612345678 = "e03d152bbe638d9fe7a04f9b88a67674bf15b73c0981755c16eb78d177721e03"
SHA256_0612345678 = "eb8ee2449ad37fd3d1afc82aa7bf19407837e3b8b77a7841c1ac7ad6b611394b"
SHA256_PLUS_31_0612345678 = "49813703c7d07658a25576fed08897745928e6ba1c794f5739ec79444879c3d7"
SHA256_PLUS_1_5551234567 = "8a59780bb8cd2ba022bfa5ba2ea3b6e07af17a7d8b30c1f9b3390e36f69019e4"
SHA256_1_5551234567 = "d6736136ea896c1bfdc553e0e86e702c70d060d805696ca3e4e9e0961353860a"
SHA256_P1 = "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
SHA256_P2 = "3946ca64ff78d93ca61090a437cbb6b3d2ca0d488f5f9ccf3059608368b27693"
SHA256_ANN = "30c2ac0577fb54c0925c09dc8e6b6d350137bbcab6ddd6c42b1eba7426f61cff"
SHA256_BOB = "a951d96a3b8d0fead17dff0e4726c16ffa7b7872d7f9a673d178e370b27f18b2"
SHA256_17_05_1990 = "ce17cd5a84d677282e78477d32b54856bb722208d57487b7c62ba957c6e00761"


def export_goal(columns: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": "out",
        "destination": {"bucket": BUCKET, "directory": "out", "file_name": "profiles.csv"},
        "columns": columns,
        **settings,
    }


# -- the three hash functions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("test@example.com", SHA256_TEST_AT_EXAMPLE),
        ("Test@Example.com", SHA256_TEST_AT_EXAMPLE_CAPITALISED),
        ("p1", SHA256_P1),
    ],
)
def test_sha256_hashes_the_utf8_value_exactly_as_it_is(value: str, digest: str) -> None:
    assert hasher("sha256")(value) == digest


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("test@example.com", SHA256_TEST_AT_EXAMPLE),
        ("Test@Example.com", SHA256_TEST_AT_EXAMPLE),
        ("  Test@Example.COM \t", SHA256_TEST_AT_EXAMPLE),
        ("Zoë@Example.com", SHA256_ZOE_LOWER),
    ],
)
def test_email_lc_sha256_trims_and_lower_cases_before_hashing(value: str, digest: str) -> None:
    assert hasher("email_lc_sha256")(value) == digest


@pytest.mark.parametrize(
    ("value", "digest"),
    [
        ("+31612345678", SHA256_PLUS_31_612345678),
        ("+31 6 1234 5678", SHA256_PLUS_31_612345678),
        ("(+31) 6-12.34.56.78", SHA256_PLUS_31_612345678),
        (
            "\uff0b\uff13\uff11 \uff16\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",
            SHA256_PLUS_31_612345678,
        ),
        ("+31 (0)6 1234 5678", SHA256_PLUS_31_0612345678),
        ("31 6 12345678", SHA256_31_612345678),
        ("06-1234 5678", SHA256_0612345678),
        ("tel: +1 (555) 123-4567", SHA256_PLUS_1_5551234567),
        ("1 555 123 4567 +", SHA256_1_5551234567),
    ],
)
def test_phone_sha256_keeps_only_digits_and_a_plus_before_the_first_digit(
    value: str, digest: str
) -> None:
    assert hasher("phone_sha256")(value) == digest


@pytest.mark.parametrize(
    ("name", "value"),
    [("sha256", ""), ("email_lc_sha256", "  \t "), ("phone_sha256", "n/a"), ("phone_sha256", "+")],
)
def test_a_value_that_normalises_to_nothing_is_not_hashed(name: Any, value: str) -> None:
    assert hasher(name)(value) is None


# -- end to end ---------------------------------------------------------------------------


async def test_hashed_columns_write_one_digest_per_value_and_never_the_clear_value(
    harness: Harness,
) -> None:
    columns = [
        {"header": "id", "value": "profile_id"},
        {"header": "id_sha", "value": "profile_id", "hash": "sha256"},
        {"header": "email_sha", "property": "email", "hash": "email_lc_sha256"},
        {"header": "phone_sha", "property": "phone", "hash": "phone_sha256"},
        {"header": "born_sha", "property": "birth", "type": "date", "hash": "sha256"},
    ]
    goal = export_goal(columns, format={"date_format": "%d-%m-%Y", "empty_value": "EMPTY"})
    harness.write_connection(goal)
    save(
        harness,
        Profile(
            "p1",
            {
                "email": ["Ann@X.nl", " bob@x.nl "],
                "phone": ["+31 6 1234 5678", "n/a"],
                "birth": ["1990-05-17"],
            },
        ),
        Profile("p2", {"email": ["test@example.com"], "phone": ["unknown"]}),
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS, outcome.result.errors
    text = await read_text(harness)
    assert text == (
        "id,id_sha,email_sha,phone_sha,born_sha\n"
        f"p1,{SHA256_P1},{SHA256_ANN}|{SHA256_BOB},{SHA256_PLUS_31_612345678},{SHA256_17_05_1990}\n"
        f"p2,{SHA256_P2},{SHA256_TEST_AT_EXAMPLE},EMPTY,\n"
    )
    for clear in ("Ann@X.nl", "bob@x.nl", "1234", "1990", "test@example.com"):
        assert clear not in text


# -- configuration ------------------------------------------------------------------------


def test_hash_on_a_column_without_an_identity_is_a_config_error(tmp_path: Path) -> None:
    problems = config_problems(
        tmp_path,
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            columns:
              - {header: id, value: profile_id, hash: sha256}
              - {header: segments, value: segments,
                 hash: sha256}
        """,
    )

    assert problems == [
        "crm.yaml:8: goals[0].columns[1].hash: column 'segments': `hash` works on "
        "`property:` and `value: profile_id` columns"
    ]


def test_an_unknown_hash_is_a_config_error_that_lists_the_choices(tmp_path: Path) -> None:
    problems = config_problems(
        tmp_path,
        """
        goals:
          - type: export-profiles
            name: out
            destination: {bucket: crm-in}
            columns:
              - {header: email, property: email, hash: md5}
        """,
    )

    assert problems == [
        "crm.yaml:6: goals[0].columns[0].hash: "
        "Input should be 'sha256', 'email_lc_sha256' or 'phone_sha256'"
    ]
