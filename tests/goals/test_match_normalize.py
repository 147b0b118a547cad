"""`match.normalize`: one customer whatever the case and spaces of their key, on both import
paths and both stores; existing stores rewritten once, refused when customers would merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import Harness, config_problems, csv_bytes, import_goal

from connector.config import load_workspace
from connector.errors import ConfigError
from connector.storage import Profile, RunStatus

EMAIL_MATCH = {"column": "email", "property": "email", "create_missing": True}
MAPPINGS = [{"column": "name", "property": "name", "rule": "set"}]


def goal(normalize: str | None, **extra: Any) -> dict[str, Any]:
    match = dict(EMAIL_MATCH) if normalize is None else {**EMAIL_MATCH, "normalize": normalize}
    return import_goal(match=match, mappings=MAPPINGS, **extra)


def emails(harness: Harness) -> dict[str, list[str]]:
    return {p.properties["email"][0]: p.properties["name"] for p in harness.store.iter_profiles()}


@pytest.mark.parametrize("columnar", [True, False], ids=["engine", "row-path"])
async def test_keys_written_two_ways_find_one_profile(harness: Harness, columnar: bool) -> None:
    harness.write_connection(goal("lowercase"))
    await harness.put(
        {"in/a.csv": csv_bytes("email,name", "Ann@Example.com ,Ann", "BOB@x.org,Bob")}
    )
    await harness.run(columnar=columnar)
    await harness.put({"in/b.csv": csv_bytes("email,name", "ann@example.com,Annie")})

    outcome = await harness.run(columnar=columnar)

    assert emails(harness) == {"ann@example.com": ["Annie"], "bob@x.org": ["Bob"]}
    assert (outcome.record.counts.profiles_created, outcome.record.counts.profiles_updated) == (
        0,
        1,
    )
    found = harness.cli("profiles", "find", "email", "ANN@example.com", "--json")
    assert '"Annie"' in found.stdout


@pytest.mark.parametrize("columnar", [True, False], ids=["engine", "row-path"])
async def test_an_email_key_that_is_no_address_rejects_its_row(
    harness: Harness, columnar: bool
) -> None:
    harness.write_connection(goal("email"))
    await harness.put(
        {"in/a.csv": csv_bytes("email,name", "Ann@Example.com,Ann", "ann at example,X", ",Y")}
    )

    outcome = await harness.run(columnar=columnar)

    assert outcome.record.status is RunStatus.PARTIAL
    assert [str(reject) for reject in outcome.result.rejects] == [
        "in/a.csv:3 column 'email': 'ann at example' is not an e-mail address "
        "(one @ with text on both sides, no spaces)",
        "in/a.csv:4 column 'email': the identifier is empty",
    ]
    assert emails(harness) == {"ann@example.com": ["Ann"]}


async def test_an_existing_store_is_rewritten_once_when_a_goal_asks_for_lowercase(
    harness: Harness,
) -> None:
    harness.write_connection(goal(None))
    await harness.put({"in/a.csv": csv_bytes("email,name", "Ann@Example.com,Ann", "bob@x.org,Bob")})
    await harness.run()
    assert harness.store.key_normalization("email") == "trim"
    [ann] = harness.store.find_profiles("email", "Ann@Example.com")
    harness.write_connection(goal("lowercase"))
    await harness.put({"in/b.csv": csv_bytes("email,name", "ANN@example.com,Annie")})

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert harness.store.key_normalization("email") == "lowercase"
    assert emails(harness) == {"ann@example.com": ["Annie"], "bob@x.org": ["Bob"]}
    [same] = harness.store.find_profiles("email", "ann@example.com")
    assert same.id == ann.id
    assert harness.store.find_profiles("email", "Ann@Example.com") == []
    assert outcome.record.counts.profiles_created == 0


async def test_a_rewrite_that_would_merge_customers_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    harness.store.ensure_unique_properties(["email"])
    with harness.store.transaction() as tx:
        tx.save_profiles(
            [
                Profile("p-upper", {"email": ["Ann@Example.com"], "name": ["Ann"]}),
                Profile("p-lower", {"email": ["ann@example.com"], "name": ["Annie"]}),
            ]
        )
    harness.write_connection(goal("lowercase"))
    await harness.put({"in/a.csv": csv_bytes("email,name", "bob@x.org,Bob")})

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.FAILURE
    assert outcome.record.error is not None
    assert "profiles p-upper and p-lower ('ann@example.com') would hold the same value" in (
        outcome.record.error
    )
    assert harness.store.key_normalization("email") == "trim"
    assert {p.id: p.properties["email"] for p in harness.store.iter_profiles()} == {
        "p-upper": ["Ann@Example.com"],
        "p-lower": ["ann@example.com"],
    }


async def test_group_members_are_written_as_their_property_is_stored(harness: Harness) -> None:
    harness.write_connection(
        goal("lowercase"),
        {
            "type": "import-groups",
            "name": "households",
            "group_type": "household",
            "source": {"bucket": "crm-exports", "prefix": "groups/"},
            "match": {"column": "household"},
            "members": {"column": "members", "property": "email"},
        },
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes("email,name", "ann@example.com,Ann", "bob@x.org,Bob"),
            "groups/h.csv": csv_bytes("household,members", "h1,ANN@Example.com | Bob@X.org "),
        }
    )

    outcome = await harness.run()

    assert outcome.record.counts.members_unmatched == 0
    group = harness.store.get_group("household", "h1")
    assert group is not None
    assert len(group.members) == 2


def test_normalize_needs_a_match_property(tmp_path: Path) -> None:
    text = """
goals:
  - type: import-profiles
    name: customers
    source: {bucket: crm-exports}
    match: {column: id, normalize: lowercase}
    mappings: [{column: name, property: name}]
"""
    [problem] = config_problems(tmp_path, text)
    assert "normalize: lowercase needs a match property" in problem


def test_goals_matching_one_property_must_normalize_alike(tmp_path: Path) -> None:
    (tmp_path / "goals").mkdir()
    for name, normalize in (("crm", "lowercase"), ("shop", "trim")):
        (tmp_path / "goals" / f"{name}.yaml").write_text(
            f"""goals:
  - type: import-profiles
    name: {name}-customers
    source: {{bucket: crm-exports}}
    match:
      column: email
      property: email
      normalize: {normalize}
    mappings: [{{column: name, property: name}}]
"""
        )
    with pytest.raises(ConfigError) as raised:
        load_workspace(tmp_path / "goals")
    problems = sorted(str(problem) for problem in raised.value.problems)
    assert len(problems) == 2
    assert problems[0].startswith(f"{tmp_path / 'goals' / 'crm.yaml'}:8: match.normalize")
    assert problems[1].startswith(f"{tmp_path / 'goals' / 'shop.yaml'}:8: match.normalize")
    assert (
        "lowercase (crm.yaml goal crm-customers), trim (shop.yaml goal shop-customers)"
        in (problems[0])
    )
