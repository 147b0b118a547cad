"""Import profiles: linking rows to profiles, the four rules, consent, rejects, batching, dry run.

Every test writes a goals folder, uploads files to the moto server over
HTTP and runs the connection on a real SQLite file, as `connector run` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import CONNECTION, GOAL, Harness, csv_bytes, import_goal

from connector.imports.columnar import ProfileBatchApplier
from connector.storage import Profile, ProfileStore, RowReject, RunStatus, StoreTransaction


def seed(
    store: ProfileStore, *profiles: Profile, unique: tuple[str, ...] = ("customer_id",)
) -> None:
    """Profiles that exist before the import (as an earlier import would have left them)."""
    store.ensure_unique_properties(unique)
    with store.transaction() as tx:
        tx.save_profiles(profiles)


def mapping(
    column: str, prop: str | None = None, rule: str = "set", **extra: Any
) -> dict[str, Any]:
    return {"column": column, "property": prop or column, "rule": rule, **extra}


SEMICOLON_COMMA = {"field_separator": ";", "decimal_separator": ","}


# ---------------------------------------------------------------- linking rows to profiles


async def test_rows_link_by_a_unique_property_updating_existing_and_creating_missing_profiles(
    harness: Harness,
) -> None:
    seed(harness.store, Profile("p-anna", {"customer_id": ["C1"], "email": ["old@example.com"]}))
    harness.write_connection(import_goal(mappings=[mapping("email")]))
    await harness.put(
        {"in/a.csv": csv_bytes("customer_id,email", "C1,anna@example.com", "C2,bram@example.com")}
    )

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert harness.store.get_profile("p-anna") == harness.profile("C1")
    assert harness.properties("C1")["email"] == ["anna@example.com"]
    assert harness.properties("C2") == {"customer_id": ["C2"], "email": ["bram@example.com"]}
    counts = outcome.record.counts
    assert (counts.profiles_created, counts.profiles_updated, counts.rows_applied) == (1, 1, 2)
    assert harness.store.count_profiles() == 2


async def test_rows_link_by_profile_id_when_the_match_property_is_omitted(
    harness: Harness,
) -> None:
    seed(harness.store, Profile("p-1", {"email": ["old@example.com"]}))
    harness.write_connection(
        import_goal(match={"column": "id", "create_missing": True}, mappings=[mapping("email")])
    )
    await harness.put({"in/a.csv": csv_bytes("id,email", "p-1,one@example.com", "p-2,two@x.org")})

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    one, two = harness.store.get_profile("p-1"), harness.store.get_profile("p-2")
    assert one is not None
    assert two is not None
    assert one.properties == {"email": ["one@example.com"]}
    assert two.properties == {"email": ["two@x.org"]}
    assert harness.store.count_profiles() == 2


@pytest.mark.parametrize(
    "match",
    [
        {"column": "customer_id", "property": "customer_id", "create_missing": False},
        {"column": "customer_id", "create_missing": False},
    ],
    ids=["by-unique-property", "by-profile-id"],
)
async def test_without_create_missing_unknown_rows_are_skipped_and_nothing_is_created(
    harness: Harness, match: dict[str, Any]
) -> None:
    known = {"customer_id": ["C1"]} if "property" in match else {}
    seed(harness.store, Profile("C1", dict(known)))
    harness.write_connection(import_goal(match=match, mappings=[mapping("email")]))
    await harness.put(
        {"in/a.csv": csv_bytes("customer_id,email", "C1,a@example.com", "C9,nobody@example.com")}
    )

    outcome = await harness.run()

    counts = outcome.record.counts
    assert outcome.record.status is RunStatus.SUCCESS
    assert (counts.rows_read, counts.rows_applied, counts.rows_skipped) == (2, 1, 1)
    assert counts.profiles_created == 0
    assert harness.store.count_profiles() == 1
    profile = harness.store.get_profile("C1")
    assert profile is not None
    assert profile.properties == {**known, "email": ["a@example.com"]}
    assert harness.store.find_profiles("email", "nobody@example.com") == []


# ---------------------------------------------------------------- rules


async def test_set_overwrites_and_set_if_empty_writes_only_an_empty_property(
    harness: Harness,
) -> None:
    seed(
        harness.store,
        Profile("p1", {"customer_id": ["C1"], "email": ["old@x.org"], "first_name": ["Anna"]}),
    )
    harness.write_connection(
        import_goal(
            mappings=[
                mapping("email"),
                mapping("first_name", rule="set_if_empty"),
                mapping("nickname", rule="set_if_empty"),
            ]
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,email,first_name,nickname",
                "C1,new@x.org,Annabel,Annie",
                "C1,newer@x.org,Anne,Ann",  # same profile, later row: set wins, set_if_empty not
                "C2,b@x.org,Bram,",
            )
        }
    )

    await harness.run()

    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "email": ["newer@x.org"],
        "first_name": ["Anna"],
        "nickname": ["Annie"],
    }
    assert harness.properties("C2") == {
        "customer_id": ["C2"],
        "email": ["b@x.org"],
        "first_name": ["Bram"],
    }


async def test_add_appends_to_a_unique_list_splitting_multi_value_cells(harness: Harness) -> None:
    seed(harness.store, Profile("p1", {"customer_id": ["C1"], "interests": ["running"]}))
    harness.write_connection(import_goal(mappings=[mapping("interests", rule="add")]))
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,interests",
                "C1,newsletter|running",
                "C1, travel | newsletter |",
                "C2,cycling|cycling",
                "C2,",
            )
        }
    )

    await harness.run()

    assert harness.properties("C1")["interests"] == ["running", "newsletter", "travel"]
    assert harness.properties("C2")["interests"] == ["cycling"]


async def test_sum_adds_decimals_exactly_across_rows_and_files(harness: Harness) -> None:
    harness.write_connection(
        import_goal(
            format=SEMICOLON_COMMA,
            mappings=[mapping("points", "loyalty_points", rule="sum", type="number")],
        )
    )
    await harness.put(
        {
            "in/1.csv": csv_bytes("customer_id;points", "C1;12,50", "C2;0,1", "C3;7"),
        }
    )
    await harness.run()
    await harness.put({"in/2.csv": csv_bytes("customer_id;points", "C1;3,10", "C2;0,2", "C3;")})

    outcome = await harness.run()

    assert outcome.record.status is RunStatus.SUCCESS
    assert harness.properties("C1")["loyalty_points"] == ["15.60"]  # never 15.600000000000001
    assert harness.properties("C2")["loyalty_points"] == ["0.3"]  # never 0.30000000000000004
    assert harness.properties("C3")["loyalty_points"] == ["7"]  # an empty cell adds 0


async def test_sum_stays_exact_beyond_28_significant_digits(harness: Harness) -> None:
    harness.write_connection(
        import_goal(mappings=[mapping("points", "loyalty_points", rule="sum")])
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,points",
                "C1,12345678901234567890123456789",
                "C1,0.000000001",
                "C1,0.000000001",
            )
        }
    )

    await harness.run()

    assert harness.properties("C1")["loyalty_points"] == ["12345678901234567890123456789.000000002"]


async def test_sum_rejects_a_non_number_naming_file_line_and_column_and_the_rest_goes_on(
    harness: Harness,
) -> None:
    seed(harness.store, Profile("p4", {"customer_id": ["C4"], "loyalty_points": ["n/a"]}))
    harness.write_connection(
        import_goal(
            format=SEMICOLON_COMMA,
            mappings=[mapping("email"), mapping("points", "loyalty_points", rule="sum")],
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id;email;points",
                "C4;d@x.org;1",  # line 2: the stored value is not a number
                "C1;a@x.org;12,50",
                "C2;b@x.org;abc",  # line 4: the cell is not a number
                "C3;c@x.org;3,10",
            )
        }
    )

    outcome = await harness.run()

    record = outcome.record
    assert record.status is RunStatus.PARTIAL
    assert (record.counts.rows_read, record.counts.rows_applied) == (4, 2)
    assert record.counts.rows_rejected == 2
    rejects = harness.store.run_rejects(record.id)  # in line order
    assert [(r.file, r.line, r.column) for r in rejects] == [
        ("in/a.csv", 2, "points"),
        ("in/a.csv", 4, "points"),
    ]
    assert rejects[0].reason == "cannot add to the stored value 'n/a': not a number"
    assert rejects[1].reason == "'abc' is not a number (decimal separator ',')"
    # a rejected row leaves no trace, not even its other columns
    assert harness.store.find_profiles("customer_id", "C2") == []
    assert harness.properties("C4") == {"customer_id": ["C4"], "loyalty_points": ["n/a"]}
    assert harness.properties("C1")["loyalty_points"] == ["12.50"]
    assert harness.properties("C3")["loyalty_points"] == ["3.10"]
    # the file counts as imported: its good rows are not applied again
    assert set(harness.store.ledger(CONNECTION, GOAL)) == {"in/a.csv"}


async def test_property_prefix_with_map_all_columns_sets_every_unmapped_column(
    harness: Harness,
) -> None:
    harness.write_connection(
        import_goal(
            mappings=[mapping("email", "email_address")],
            property_prefix="crm_",
            map_all_columns=True,
        )
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,email,City,zip", "C1,a@x.org,Utrecht,3511", "C1,,Amsterdam,"
            )
        }
    )

    await harness.run()

    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "email_address": ["a@x.org"],
        "crm_City": ["Amsterdam"],  # rule set: the later row wins
        "crm_zip": ["3511"],  # an empty cell changes nothing
    }


# ---------------------------------------------------------------- consent


async def test_with_objectives_rows_for_profiles_without_consent_are_skipped(
    harness: Harness,
) -> None:
    seed(
        harness.store,
        Profile("p1", {"customer_id": ["C1"], "consented_objectives": ["marketing"]}),
        Profile("p2", {"customer_id": ["C2"], "consented_objectives": ["sales"]}),
    )
    harness.write_connection(import_goal(mappings=[mapping("email")]), objectives=["marketing"])
    await harness.put(
        {"in/a.csv": csv_bytes("customer_id,email", "C1,a@x.org", "C2,b@x.org", "C3,c@x.org")}
    )

    outcome = await harness.run()

    counts = outcome.record.counts
    assert (counts.rows_applied, counts.rows_skipped, counts.profiles_created) == (1, 2, 0)
    assert harness.properties("C1")["email"] == ["a@x.org"]
    assert "email" not in harness.properties("C2")
    assert harness.store.find_profiles("customer_id", "C3") == []


async def test_with_a_consent_column_rows_that_give_consent_apply(harness: Harness) -> None:
    seed(harness.store, Profile("p2", {"customer_id": ["C2"], "consented_objectives": ["sales"]}))
    harness.write_connection(
        import_goal(
            mappings=[mapping("consent", "consented_objectives", rule="add"), mapping("email")]
        ),
        objectives=["marketing"],
    )
    await harness.put(
        {
            "in/a.csv": csv_bytes(
                "customer_id,consent,email",
                "C1,marketing,a@x.org",
                "C2,marketing,b@x.org",
                "C3,sales,c@x.org",
                "C4,,d@x.org",
            )
        }
    )

    outcome = await harness.run()

    counts = outcome.record.counts
    assert (counts.rows_applied, counts.rows_skipped, counts.profiles_created) == (2, 2, 1)
    assert harness.properties("C1") == {
        "customer_id": ["C1"],
        "consented_objectives": ["marketing"],
        "email": ["a@x.org"],
    }
    assert harness.properties("C2")["consented_objectives"] == ["sales", "marketing"]
    assert harness.properties("C2")["email"] == ["b@x.org"]
    assert harness.store.count_profiles() == 2


# ---------------------------------------------------------------- batching


class _CountingTransaction:
    """Delegates to the real transaction, counting the calls that cost a round trip."""

    def __init__(self, inner: StoreTransaction, calls: dict[str, int]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        self._calls[name] = self._calls.get(name, 0) + 1
        return getattr(self._inner, name)


async def _ten_thousand_rows_for_4000_customers(harness: Harness) -> int:
    rows = 10_000
    lines = ["customer_id,email,points"]
    lines += [f"C{i % 4000},user{i}@x.org,{i % 7}" for i in range(rows)]
    harness.write_connection(
        import_goal(mappings=[mapping("email"), mapping("points", rule="sum")])
    )
    await harness.put({"in/big.csv": csv_bytes(*lines)})
    return rows


async def test_the_row_path_applies_rows_in_batches_not_one_round_trip_per_row(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = await _ten_thousand_rows_for_4000_customers(harness)
    store = harness.store
    real_transaction = store.transaction
    calls: dict[str, int] = {}

    @contextmanager
    def counting_transaction() -> Iterator[_CountingTransaction]:
        with real_transaction() as tx:
            yield _CountingTransaction(tx, calls)

    monkeypatch.setattr(store, "transaction", counting_transaction)

    outcome = await harness.run(batch_size=1000, columnar=False)

    assert outcome.record.counts.rows_applied == rows
    batches = rows // 1000
    assert 0 < calls["resolve_profiles"] <= 2 * batches
    assert 0 < calls["save_profiles"] <= 2 * batches
    assert calls["load_profiles"] <= 2 * batches
    assert harness.store.count_profiles() == 4000
    assert harness.properties("C3")["points"] == [str(sum((i % 7) for i in range(3, rows, 4000)))]


async def test_the_engine_applies_a_file_with_a_few_statements_per_piece(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = await _ten_thousand_rows_for_4000_customers(harness)
    store = harness.store
    real_transaction = store.batch_transaction
    calls: dict[str, int] = {}

    @contextmanager
    def counting_transaction() -> Iterator[_CountingTransaction]:
        with real_transaction() as tx:
            yield _CountingTransaction(tx, calls)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "batch_transaction", counting_transaction)
    pieces: list[int] = []
    real_apply = ProfileBatchApplier.apply

    def counting_apply(self: ProfileBatchApplier, converted: Any) -> Any:
        if converted.piece.table.num_rows:
            pieces.append(converted.piece.table.num_rows)
        return real_apply(self, converted)

    monkeypatch.setattr(ProfileBatchApplier, "apply", counting_apply)

    outcome = await harness.run()

    counts = outcome.record.counts
    assert (counts.rows_applied, counts.profiles_created) == (rows, 4000)
    assert sum(pieces) == rows
    assert calls["lookup"] == len(pieces)  # one key lookup per piece, whatever its rows
    assert 0 < calls["encoded_insert"] <= len(pieces)
    assert harness.store.count_profiles() == 4000
    assert harness.properties("C3")["points"] == [str(sum((i % 7) for i in range(3, rows, 4000)))]


async def test_an_update_writes_only_the_properties_some_changed_profile_changes(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stored(customer: str, email: str) -> Profile:
        values = {"customer_id": [customer], "email": [email], "city": ["Gent"]}
        return Profile(f"p-{customer}", values | {"country": ["BE"]})

    seed(harness.store, stored("C1", "a@x.org"), stored("C2", "b@x.org"), stored("C3", "c@x.org"))
    before = {c: harness.profile(c).change_seq for c in ("C1", "C2", "C3")}
    harness.write_connection(
        import_goal(mappings=[mapping("email"), mapping("city"), mapping("country")])
    )
    rows = ["C1,a@x.org,Gent,BE", "C2,b@x.org,Brugge,BE", "C3,new@x.org,Gent,BE"]
    await harness.put({"in/a.csv": csv_bytes("customer_id,email,city,country", *rows)})
    real_transaction = harness.store.batch_transaction
    written: list[list[str]] = []

    @contextmanager
    def recording_transaction() -> Iterator[Any]:
        with real_transaction() as tx:
            real_update = tx.encoded_update

            def encoded_update(profiles: Any, places: Any = None) -> Any:
                written.append(profiles.column_names)
                return real_update(profiles, places)

            monkeypatch.setattr(tx, "encoded_update", encoded_update)
            yield tx

    monkeypatch.setattr(harness.store, "batch_transaction", recording_transaction)

    outcome = await harness.run()

    # email changes for C3 and city for C2, so both are written for both; country for none
    assert written == [["id", "email", "city"]]
    assert outcome.record.counts.profiles_updated == 2
    assert (harness.properties("C2")["city"], harness.properties("C2")["email"]) == (
        ["Brugge"],
        ["b@x.org"],
    )
    assert (harness.properties("C3")["city"], harness.properties("C3")["email"]) == (
        ["Gent"],
        ["new@x.org"],
    )
    assert all(harness.properties(c)["country"] == ["BE"] for c in ("C1", "C2", "C3"))
    after = {c: harness.profile(c).change_seq for c in ("C1", "C2", "C3")}
    assert after["C1"] == before["C1"]  # unchanged: not touched at all
    assert after["C2"] > before["C2"]
    assert after["C3"] > before["C3"]  # stamped as changed, whatever columns were written


# ---------------------------------------------------------------- dry run and progress


async def test_dry_run_reports_counts_and_writes_nothing(harness: Harness) -> None:
    seed(harness.store, Profile("p1", {"customer_id": ["C1"], "email": ["old@x.org"]}))
    harness.write_connection(import_goal(mappings=[mapping("email"), mapping("n", rule="sum")]))
    await harness.put(
        {"in/a.csv": csv_bytes("customer_id,email,n", "C1,a@x.org,1", "C2,b@x.org,x")}
    )
    before = [p.as_json() for p in harness.store.iter_profiles()]
    seq = harness.store.change_seq()

    outcome = await harness.run(dry_run=True)

    record = outcome.record
    assert record.dry_run
    assert record.status is RunStatus.PARTIAL
    assert (record.counts.files, record.counts.rows_read, record.counts.rows_applied) == (1, 2, 1)
    assert record.counts.rows_rejected == 1
    assert [p.as_json() for p in harness.store.iter_profiles()] == before
    assert harness.store.change_seq() == seq
    assert harness.store.ledger(CONNECTION, GOAL) == {}
    [shown] = harness.store.list_runs(CONNECTION)
    assert shown.dry_run
    assert shown.id == record.id
    assert harness.store.run_rejects(record.id) == [
        RowReject("in/a.csv", 3, "n", "'x' is not a number (decimal separator '.')")
    ]

    real = await harness.run()

    assert real.record.counts.files == 1
    assert harness.properties("C1")["email"] == ["a@x.org"]


class _RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.rows = 0

    def file_started(self, goal: str, key: str, size: int) -> None:
        self.events.append(("started", goal, key))

    def advance(self, rows: int) -> None:
        self.rows += rows

    def file_finished(self, goal: str, key: str, outcome: str) -> None:
        self.events.append(("finished", goal, key, outcome))


async def test_progress_hears_of_every_file_and_every_row_read(harness: Harness) -> None:
    harness.write_connection(import_goal(mappings=[mapping("n", rule="sum")]))
    lines = ["customer_id,n", *(f"C{i},{i}" for i in range(2500)), "C1,bad"]
    await harness.put({"in/a.csv": csv_bytes(*lines), "in/b.csv": csv_bytes("customer_id,n")})
    progress = _RecordingProgress()

    outcome = await harness.run(batch_size=1000, progress=progress)

    assert outcome.record.counts.rows_read == 2501
    assert progress.rows == 2501
    assert sorted(progress.events) == [
        ("finished", GOAL, "in/a.csv", "imported"),
        ("finished", GOAL, "in/b.csv", "imported"),
        ("started", GOAL, "in/a.csv"),
        ("started", GOAL, "in/b.csv"),
    ]


# ---------------------------------------------------------------- the run's distinct profiles


def _export_all(name: str) -> dict[str, Any]:
    return {
        "type": "export-profiles",
        "name": name,
        "segment": "all",
        "destination": {"bucket": "crm-exports", "file_name": f"out/{name}.csv"},
        "columns": [{"property": "customer_id", "header": "customer_id"}],
    }


@pytest.mark.parametrize("columnar", [True, False], ids=["engine", "row-path"])
async def test_unique_counts_each_profile_once_across_rows_files_and_goals(
    harness: Harness, columnar: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 item 9: C1 is in three rows of two files, imported and exported by two
    goals; C9 is only exported. Four distinct profiles, whatever the rows and goals."""
    monkeypatch.setattr("connector.storage.profiles.AMONG_SLICE", 2)  # several statements
    points = mapping("points", rule="sum", type="number")
    harness.write_connection(
        import_goal(mappings=[points]), _export_all("everyone"), _export_all("again")
    )
    await harness.put({"in/c.csv": csv_bytes("customer_id,points", "C9,1")})
    first = await harness.run(goal=GOAL, columnar=columnar)
    assert first.record.counts.unique_profiles == 1
    await harness.put(
        {
            "in/a.csv": csv_bytes("customer_id,points", "C1,1", "C1,2", "C2,1"),
            "in/b.csv": csv_bytes("customer_id,points", "C1,5", "C2,1", "C3,1"),
        }
    )

    outcome = await harness.run(columnar=columnar)

    counts = outcome.record.counts
    assert (counts.rows_applied, counts.profiles_exported) == (6, 8)
    assert counts.unique_profiles == 4
    [stored] = [run for run in harness.store.list_runs(CONNECTION) if run.id == outcome.record.id]
    assert stored.counts.unique_profiles == 4


@pytest.mark.parametrize("columnar", [True, False], ids=["engine", "row-path"])
async def test_a_run_of_one_file_takes_its_own_count_of_unique_profiles(
    harness: Harness, columnar: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file's transaction already counted its profiles: the run asks the store again
    only when several files (or a group file, which stamps profiles it does not count) may
    share profiles."""
    seed(harness.store, Profile("p-C1", {"customer_id": ["C1"], "points": ["1"]}))
    harness.write_connection(import_goal(mappings=[mapping("points", rule="sum", type="number")]))
    real = harness.store.count_profiles_changed_in
    asked: list[list[int]] = []

    def counting(change_seqs: Any) -> int:
        asked.append(list(change_seqs))
        return real(change_seqs)

    monkeypatch.setattr(harness.store, "count_profiles_changed_in", counting)
    rows = ("customer_id,points", "C1,2", "C2,1", "C1,3", "C3,1", "C2,1")
    await harness.put({"in/a.csv": csv_bytes(*rows)})
    one = await harness.run(columnar=columnar)
    assert (one.record.counts.profiles_created, one.record.counts.profiles_updated) == (2, 1)
    assert one.record.counts.unique_profiles == 3
    assert asked == []
    await harness.put(
        {
            "in/b.csv": csv_bytes("customer_id,points", "C1,1", "C4,1"),
            "in/c.csv": csv_bytes("customer_id,points", "C1,1", "C5,1"),
        }
    )
    two = await harness.run(columnar=columnar)
    assert two.record.counts.unique_profiles == 3  # C1 in both files counts once
    assert len(asked) == 1
    assert len(asked[0]) == 2
