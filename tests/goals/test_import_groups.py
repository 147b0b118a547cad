"""The import-groups goal, end to end: moto S3 over HTTP, a real SQLite file, the real runner.

Each test writes a goals folder, puts files in S3, runs the connection with
`run_connection` and reads the result back from the store (or through the
`connector` command, as an operator would).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import Workspace, load_workspace
from connector.errors import ConfigError
from connector.formats.reader import INFLATE_PIECE
from connector.goals.runner import RunOptions, RunOutcome, run_connection
from connector.sources import S3Client
from connector.storage import (
    Group,
    Profile,
    ProfileStore,
    RowReject,
    RunStatus,
    StoreTransaction,
    open_store,
)
from connector.storage.postgres._transaction import PostgresTransaction
from connector.storage.sqlite._transaction import SQLiteTransaction

BUCKET = "crm-groups"
CONNECTION = "crm"

CUSTOMERS: dict[str, Any] = {
    "type": "import-profiles",
    "name": "customers",
    "source": {"bucket": BUCKET, "prefix": "customers/", "files": ["*.csv"]},
    "format": {"field_separator": ";"},
    "match": {"column": "customer_id", "property": "customer_id", "create_missing": True},
    "mappings": [{"column": "email", "property": "email"}],
}
HOUSEHOLDS: dict[str, Any] = {
    "type": "import-groups",
    "name": "households",
    "group_type": "household",
    "source": {
        "bucket": BUCKET,
        "prefix": "households/",
        "files": ["households-*.csv", "households-*.csv.gz"],
    },
    "format": {"field_separator": ";", "decimal_separator": ",", "multi_value_separator": "|"},
    "match": {"column": "household_id"},
    "members": {"column": "members", "property": "customer_id"},
    "mappings": [
        {"column": "name", "property": "name", "rule": "set"},
        {"column": "founded", "property": "founded", "rule": "set_if_empty"},
        {"column": "tags", "property": "tags", "rule": "add"},
        {"column": "spend", "property": "spend", "rule": "sum", "type": "number"},
    ],
}
COMPANIES: dict[str, Any] = {
    "type": "import-groups",
    "name": "companies",
    "group_type": "company",
    "source": {"bucket": BUCKET, "prefix": "companies/", "files": ["*.csv"]},
    "format": {"field_separator": ";"},
    "match": {"column": "company_id"},
    "members": {"column": "employees", "property": "customer_id"},
    "mappings": [{"column": "name", "property": "name"}],
}
CUSTOMERS_CSV = "customer_id;email\nC001;a@x.nl\nC002;b@x.nl\nC003;c@x.nl\nC004;d@x.nl\n"
HOUSEHOLD_HEADER = "household_id;name;founded;tags;spend;members"


def csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def write_workspace(goals_dir: Path, endpoint: str, *goals: dict[str, Any]) -> Workspace:
    """(Re)write the connection file with these goals and load the goals folder."""
    goals_dir.mkdir(exist_ok=True)
    connection = {
        "id": CONNECTION,
        "storage": {
            "region": "eu-west-1",
            "endpoint_url": endpoint,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
        "goals": list(goals),
    }
    (goals_dir / f"{CONNECTION}.yaml").write_text(yaml.safe_dump(connection, sort_keys=False))
    return load_workspace(goals_dir)


async def run(store: ProfileStore, workspace: Workspace, **options: Any) -> RunOutcome:
    return await run_connection(store, workspace, CONNECTION, RunOptions(**options))


class WriteSpy:
    """Counts group writes made inside store transactions (either backend), committed or not."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.groups_saved = 0
        self.members_added = 0
        for transaction in (SQLiteTransaction, PostgresTransaction):
            self._spy(monkeypatch, transaction)

    def _spy(self, monkeypatch: pytest.MonkeyPatch, transaction: type[StoreTransaction]) -> None:
        save_groups = transaction.save_groups
        add_members = transaction.add_members

        def counting_save(tx: StoreTransaction, groups: Iterable[Group]) -> int:
            saved = save_groups(tx, groups)
            self.groups_saved += saved
            return saved

        def counting_add(
            tx: StoreTransaction, group_type: str, pairs: Iterable[tuple[str, str]]
        ) -> int:
            added = add_members(tx, group_type, pairs)
            self.members_added += added
            return added

        monkeypatch.setattr(transaction, "save_groups", counting_save)
        monkeypatch.setattr(transaction, "add_members", counting_add)


@pytest.fixture
async def bucket(reset_moto: None, s3: S3Client) -> str:
    await s3.ensure_bucket(BUCKET)
    return BUCKET


@pytest.fixture
def db_path(tmp_path: Path, new_database: Callable[[Path], str]) -> str:
    """The store's `database` setting: a SQLite file, or a PostgreSQL URL (see `store_kind`)."""
    return new_database(tmp_path)


@pytest.fixture
def store(db_path: str) -> Iterator[ProfileStore]:
    with open_store(db_path) as opened:
        yield opened


@pytest.fixture
def goals_dir(tmp_path: Path) -> Path:
    return tmp_path / "goals"


@pytest.fixture
def customers(store: ProfileStore) -> dict[str, str]:
    """Profiles p1..p4 with customer_id C001..C004, by customer id, written to the store.

    customer_id is not declared unique here: the groups goal declares its
    member property itself, indexing the values existing profiles hold. (The
    tests that import profiles with an import-profiles goal upload
    CUSTOMERS_CSV instead.)
    """
    ids = {f"C00{n}": f"p{n}" for n in range(1, 5)}
    with store.transaction() as tx:
        tx.save_profiles(Profile(pid, {"customer_id": [cid]}) for cid, pid in ids.items())
    return ids


def profile_of(store: ProfileStore, customer_id: str) -> str:
    (profile,) = store.find_profiles("customer_id", customer_id)
    return profile.id


# -- properties and members ------------------------------------------------------


async def test_group_properties_follow_set_set_if_empty_add_and_exact_sum(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    await s3.put_object(
        bucket,
        "households/households-2026-11-01.csv",
        csv(
            HOUSEHOLD_HEADER,
            "H1;Jansen;2001;urban|pets;10,10;C001|C002",
            "H2;De Vries;;rural;0,2;C003",
            '"H1";"Jansen; Bakker";1999;pets|garden | pets;0,20;C002|C004',
            "H2;;2010;rural|urban;0,1;",
        ),
    )
    # a later file, gzipped (recognised by its bytes), adds to what the first left
    await s3.put_object(
        bucket,
        "households/households-2026-11-02.csv.gz",
        gzip.compress(csv(HOUSEHOLD_HEADER, "H1;;;garden|kids;1,05;")),
    )
    # outside the goal's patterns: never read
    await s3.put_object(bucket, "households/readme.txt", b"not a group file")

    # batch_size 1: H1's two rows land in different batches of the same transaction
    outcome = await run(store, workspace, batch_size=1)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    counts = outcome.record.counts
    assert counts.files == 2  # readme.txt is not matched
    assert counts.rows_applied == 5
    # per file: the second file updates H1
    assert (counts.groups_created, counts.groups_updated) == (2, 1)
    h1 = store.get_group("household", "H1")
    h2 = store.get_group("household", "H2")
    assert h1 is not None
    assert h2 is not None
    assert h1.properties == {
        "name": ["Jansen; Bakker"],  # set: the last row wins
        "founded": ["2001"],  # set_if_empty: the first value stays
        "tags": ["urban", "pets", "garden", "kids"],  # add: unique, in order, split on "|"
        "spend": ["11.35"],  # sum: exact decimal, "," read as the decimal separator
    }
    assert h2.properties == {
        "name": ["De Vries"],  # an empty cell changes nothing
        "founded": ["2010"],  # set_if_empty fills an empty property
        "tags": ["rural", "urban"],
        "spend": ["0.3"],  # 0.2 + 0.1 in binary floating point would be 0.30000000000000004
    }
    assert h1.members == [customers["C001"], customers["C002"], customers["C004"]]
    assert h2.members == [customers["C003"]]


async def test_members_are_linked_through_a_unique_profile_property_of_imported_profiles(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    # one run: the profiles goal comes first, so the groups goal finds its profiles
    workspace = write_workspace(goals_dir, moto_endpoint, CUSTOMERS, HOUSEHOLDS)
    await s3.put_object(bucket, "customers/2026-11-01.csv", CUSTOMERS_CSV.encode())
    await s3.put_object(
        bucket,
        "households/households-2026-11-01.csv",
        csv(HOUSEHOLD_HEADER, "H1;Jansen;;;;C001| C002 |C001", "H2;De Vries;;;;C003"),
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    c1, c2, c3, c4 = (profile_of(store, f"C00{n}") for n in range(1, 5))
    h1 = store.get_group("household", "H1")
    h2 = store.get_group("household", "H2")
    assert h1 is not None
    assert h2 is not None
    assert h1.members == sorted([c1, c2])
    assert h2.members == [c3]
    assert store.groups_of_profile(c1) == {"household": ["H1"]}
    assert store.groups_of_profile(c4) == {}
    assert outcome.record.counts.members_unmatched == 0
    assert outcome.record.counts.profiles_created == 4


async def test_members_are_linked_through_the_profile_id(
    bucket: str, s3: S3Client, store: ProfileStore, goals_dir: Path, moto_endpoint: str
) -> None:
    by_id = {
        **CUSTOMERS,
        "match": {"column": "id", "property": "profile_id", "create_missing": True},
    }
    households = {**HOUSEHOLDS, "members": {"column": "members"}}  # property defaults to profile_id
    workspace = write_workspace(goals_dir, moto_endpoint, by_id, households)
    await s3.put_object(bucket, "customers/p.csv", csv("id;email", "P1;a@x.nl", "P2;b@x.nl"))
    await s3.put_object(
        bucket,
        "households/households-1.csv",
        csv(HOUSEHOLD_HEADER, "H1;Jansen;;;;P1|P2|P9"),
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.members == ["P1", "P2"]
    assert store.groups_of_profile("P2") == {"household": ["H1"]}
    assert outcome.record.counts.members_unmatched == 1
    assert store.get_profile("P9") is None
    # a run of one group file: the member it stamps is counted among the run's profiles
    # (a group file counts no profiles itself, so the store counts them)
    await s3.put_object(
        bucket, "households/households-2.csv", csv(HOUSEHOLD_HEADER, "H2;Peeters;;;;P1")
    )
    again = await run(store, workspace)
    assert (again.record.counts.files, again.record.counts.unique_profiles) == (1, 1)


async def test_members_matching_no_profile_are_counted_and_never_created(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    await s3.put_object(
        bucket,
        "households/households-2026-11-01.csv",
        csv(HOUSEHOLD_HEADER, "H1;Jansen;;;;C001|C998", "H2;De Vries;;;;C999"),
    )

    outcome = await run(store, workspace)

    # unmatched members are not rejected rows: the run is a success
    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    assert outcome.record.counts.members_unmatched == 2
    assert outcome.record.counts.rows_applied == 2
    assert store.count_profiles() == 4
    assert store.find_profiles("customer_id", "C998") == []
    assert store.find_profiles("customer_id", "C999") == []
    h1 = store.get_group("household", "H1")
    h2 = store.get_group("household", "H2")
    assert h1 is not None
    assert h2 is not None
    assert h1.members == [customers["C001"]]
    assert h2.members == []  # the group itself is still imported
    # the history keeps the count
    (latest, *_) = store.list_runs(CONNECTION)
    assert latest.counts.members_unmatched == 2


# -- rejects ---------------------------------------------------------------------


async def test_rows_with_an_empty_group_id_are_rejected_with_file_line_column_and_run_is_partial(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    key = "households/households-2026-11-01.csv"
    await s3.put_object(
        bucket,
        key,
        csv(HOUSEHOLD_HEADER, "H1;Jansen;;;;C001", ";Nobody;;;;C002", "  ;Blank;;;;C003"),
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.PARTIAL
    assert outcome.record.counts.rows_rejected == 2
    assert store.run_rejects(outcome.record.id) == [
        RowReject(key, 3, "household_id", "the identifier is empty"),
        RowReject(key, 4, "household_id", "the identifier is empty"),
    ]
    assert store.get_group("household", "") is None
    assert store.groups_of_profile(customers["C002"]) == {}
    assert store.groups_of_profile(customers["C003"]) == {}
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.members == [customers["C001"]]
    # a partial file is still imported: the next run skips it
    again = await run(store, workspace)
    assert again.record.counts.files_skipped == 1
    assert again.record.status is RunStatus.SUCCESS


async def test_a_row_that_cannot_apply_is_rejected_whole_leaving_no_property_or_member(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    # H9 holds a spend that is no number (written by some other means): sum cannot add to it
    with store.transaction() as tx:
        tx.save_groups([Group("household", "H9", {"name": ["Old"], "spend": ["n/a"]})])
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    key = "households/households-2026-11-01.csv"
    await s3.put_object(
        bucket,
        key,
        csv(
            HOUSEHOLD_HEADER,
            "H1;Jansen;;;5;C001",
            "H1;Renamed;;x;abc;C002",
            # the goal's decimal separator is ",": "1.5" is no number either
            "H2;New;;;1.5;C003",
            # name comes before spend: staged, then dropped with the row
            "H9;Renamed;;x;7;C004",
        ),
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.PARTIAL
    assert outcome.record.counts.rows_rejected == 3
    rejects = store.run_rejects(outcome.record.id)
    assert [(r.file, r.line, r.column) for r in rejects] == [
        (key, 3, "spend"),
        (key, 4, "spend"),
        (key, 5, "spend"),
    ]
    assert "not a number" in rejects[0].reason
    assert "cannot add to the stored value 'n/a'" in rejects[2].reason
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.properties == {"name": ["Jansen"], "spend": ["5"]}
    assert h1.members == [customers["C001"]]
    assert store.get_group("household", "H2") is None
    assert store.groups_of_profile(customers["C003"]) == {}
    h9 = store.get_group("household", "H9")
    assert h9 is not None
    assert h9.properties == {"name": ["Old"], "spend": ["n/a"]}
    assert h9.members == []


@pytest.mark.parametrize("column", ["household_id", "members"])
async def test_a_file_without_the_group_id_or_members_column_fails_naming_it(
    column: str,
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    header = HOUSEHOLD_HEADER.replace(column, "something_else")
    key = "households/households-1.csv"
    await s3.put_object(bucket, key, csv(header, "H1;Jansen;;;1;C001"))

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.FAILURE
    assert outcome.record.error is not None
    assert f"the header has no column {column!r}" in outcome.record.error
    assert key in outcome.record.error
    assert store.get_group("household", "H1") is None
    assert store.ledger(CONNECTION, "households") == {}


# -- exactly once, change detection, rollback -------------------------------------


async def test_rerun_skips_an_imported_file_and_applies_nothing_twice(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    await s3.put_object(
        bucket, "households/households-1.csv", csv(HOUSEHOLD_HEADER, "H1;Jansen;;a;10;C001")
    )
    first = await run(store, workspace)
    assert first.record.status is RunStatus.SUCCESS, first.record.error

    again = await run(store, workspace)

    assert again.record.status is RunStatus.SUCCESS, again.record.error
    assert (again.record.counts.files, again.record.counts.files_skipped) == (0, 1)
    assert again.record.counts.rows_read == 0
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.properties["spend"] == ["10"]
    assert set(store.ledger(CONNECTION, "households")) == {"households/households-1.csv"}


async def test_a_changed_file_is_applied_again_as_a_whole_like_profiles(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    """A new ETag re-applies every row of the new content by the rules, as profile imports do.

    Nothing is "undone" first: sum adds the new file's values to the total the
    old content left, add keeps old values, and memberships only grow (a member
    missing from the new content stays linked).
    """
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    key = "households/households-1.csv"
    etag = await s3.put_object(bucket, key, csv(HOUSEHOLD_HEADER, "H1;Jansen;;a;10;C001"))
    await run(store, workspace)

    new_etag = await s3.put_object(
        bucket, key, csv(HOUSEHOLD_HEADER, "H1;Jansen-Bakker;;b;5;C002", "H2;De Vries;;;1;C003")
    )
    assert new_etag != etag
    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    assert outcome.record.counts.files == 1
    assert (outcome.record.counts.groups_created, outcome.record.counts.groups_updated) == (1, 1)
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.properties == {"name": ["Jansen-Bakker"], "tags": ["a", "b"], "spend": ["15"]}
    assert h1.members == [customers["C001"], customers["C002"]]
    assert store.get_group("household", "H2") is not None
    assert store.ledger(CONNECTION, "households")[key].etag == new_etag


async def test_a_changed_goal_configuration_imports_the_file_again(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS, COMPANIES)
    key = "households/households-1.csv"
    await s3.put_object(
        bucket,
        key,
        b"household_id;name;founded;tags;spend;members;city\nH1;Jansen;;;10;C001;Delft\n",
    )
    await s3.put_object(bucket, "companies/c.csv", csv("company_id;name;employees", "K7;Acme;"))
    await run(store, workspace)
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert "city" not in h1.properties
    fingerprint = store.ledger(CONNECTION, "households")[key].config_fingerprint

    with_city = {
        **HOUSEHOLDS,
        "mappings": [*HOUSEHOLDS["mappings"], {"column": "city", "property": "city"}],
    }
    changed = write_workspace(goals_dir, moto_endpoint, with_city, COMPANIES)
    outcome = await run(store, changed)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    # the companies goal did not change: its file is still skipped
    assert (outcome.record.counts.files, outcome.record.counts.files_skipped) == (1, 1)
    h1 = store.get_group("household", "H1")
    assert h1 is not None
    assert h1.properties["city"] == ["Delft"]
    # applied again as a whole: the sum counts the file a second time, as for profiles
    assert h1.properties["spend"] == ["20"]
    assert store.ledger(CONNECTION, "households")[key].config_fingerprint != fingerprint


async def test_a_file_failing_midway_leaves_no_group_member_or_ledger_entry(
    monkeypatch: pytest.MonkeyPatch,
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    # enough text for several inflate pieces, so the first rows are parsed and applied
    # before the reader reaches the cut; the name column pads each row
    padding = "x" * 200
    rows = [f"H{n:05d};Family {padding};;t{n % 13};{n},5;C00{n % 4 + 1}" for n in range(4000)]
    text = csv(HOUSEHOLD_HEADER, *rows)
    assert len(text) > 3 * INFLATE_PIECE
    whole = gzip.compress(text)
    key = "households/households-big.csv.gz"
    await s3.put_object(bucket, key, whole[: len(whole) * 2 // 3])
    spy = WriteSpy(monkeypatch)

    # the row path: its batches write before the cut (the engine reads this file as one
    # piece, so it fails before writing; its rollback is covered in tests/engine)
    outcome = await run(store, workspace, batch_size=100, columnar=False)

    # groups and members were written inside the file's transaction before the gzip ran out...
    assert spy.groups_saved >= 100
    assert spy.members_added >= 100
    # ...and all of them were rolled back
    assert outcome.record.status is RunStatus.FAILURE
    assert outcome.record.error is not None
    assert "truncated" in outcome.record.error
    assert key in outcome.record.error
    assert outcome.record.counts.files == 0
    assert store.get_group("household", "H00000") is None
    assert store.get_group("household", "H00001") is None
    for profile_id in customers.values():
        assert store.groups_of_profile(profile_id) == {}
    assert store.ledger(CONNECTION, "households") == {}

    # without a ledger entry the file is tried again, and once whole it is imported
    await s3.put_object(bucket, key, whole)
    fixed = await run(store, workspace, batch_size=100, columnar=False)
    assert fixed.record.status is RunStatus.SUCCESS, fixed.record.error
    assert fixed.record.counts.groups_created == 4000
    last = store.get_group("household", "H03999")
    assert last is not None
    assert last.members == [customers["C004"]]
    assert set(store.ledger(CONNECTION, "households")) == {key}


# -- group types -----------------------------------------------------------------


async def test_two_group_types_with_the_same_id_are_separate_groups(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS, COMPANIES)
    await s3.put_object(
        bucket, "households/households-1.csv", csv(HOUSEHOLD_HEADER, "X1;Home;;;2;C001|C003")
    )
    await s3.put_object(
        bucket, "companies/c.csv", csv("company_id;name;employees", "X1;Acme;C002|C003")
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    assert outcome.record.counts.groups_created == 2
    c1, c2, c3 = customers["C001"], customers["C002"], customers["C003"]
    home = store.get_group("household", "X1")
    acme = store.get_group("company", "X1")
    assert home is not None
    assert acme is not None
    assert home.properties == {"name": ["Home"], "spend": ["2"]}
    assert acme.properties == {"name": ["Acme"]}
    assert home.members == sorted([c1, c3])
    assert acme.members == sorted([c2, c3])
    assert store.groups_of_profile(c1) == {"household": ["X1"]}
    assert store.groups_of_profile(c2) == {"company": ["X1"]}
    assert store.groups_of_profile(c3) == {"company": ["X1"], "household": ["X1"]}


# -- the command line ------------------------------------------------------------


CLI_CHILD = """
import json, sys
from connector.cli import main
sys.exit(max(main(argv) for argv in json.loads(sys.argv[1])))
"""


async def connector_json(goals_dir: Path, db_path: str, *commands: list[str]) -> list[Any]:
    """Run `connector` commands (its real `main`) in a child process; each one's JSON output.

    A child process, so the output goes where the command writes it and the
    settings come from the environment, as for an operator; one child for all
    the commands, since importing the package is most of the cost.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTOR_")}
    env.update(
        CONNECTOR_GOALS_DIR=str(goals_dir),
        CONNECTOR_DATABASE=str(db_path),
        CONNECTOR_LOG_LEVEL="error",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CLI_CHILD,
        json.dumps(commands),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_cli_shows_a_group_with_members_and_a_profile_with_its_groups(
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    db_path: str,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, CUSTOMERS, HOUSEHOLDS, COMPANIES)
    await s3.put_object(bucket, "customers/2026-11-01.csv", CUSTOMERS_CSV.encode())
    await s3.put_object(
        bucket,
        "households/households-1.csv",
        csv(HOUSEHOLD_HEADER, "H1;Jansen;2001;urban|pets;12,5;C001|C002"),
    )
    await s3.put_object(bucket, "companies/c.csv", csv("company_id;name;employees", "K7;Acme;C001"))
    outcome = await run(store, workspace)
    assert outcome.record.status is RunStatus.SUCCESS, outcome.record.error
    c1, c2 = profile_of(store, "C001"), profile_of(store, "C002")

    group, profile = await connector_json(
        goals_dir,
        db_path,
        ["groups", "get", "household", "H1", "--json"],
        ["profiles", "get", c1, "--json"],
    )

    assert group["type"] == "household"
    assert group["id"] == "H1"
    assert group["properties"] == {
        "name": ["Jansen"],
        "founded": ["2001"],
        "tags": ["urban", "pets"],
        "spend": ["12.5"],
    }
    assert group["members"] == sorted([c1, c2])
    assert profile["id"] == c1
    assert profile["properties"]["customer_id"] == ["C001"]
    assert profile["groups"] == {"company": ["K7"], "household": ["H1"]}


# -- members_mode: replace -------------------------------------------------------

REPLACING = {**HOUSEHOLDS, "members_mode": "replace"}


def members(store: ProfileStore, group_id: str) -> list[str] | None:
    group = store.get_group("household", group_id)
    return None if group is None else sorted(group.members)


async def test_replace_makes_the_latest_row_the_whole_membership(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, REPLACING)
    await s3.put_object(
        bucket,
        "households/households-1.csv",
        csv(HOUSEHOLD_HEADER, "H1;Jansen;;;;C001|C002|C003", "H2;De Vries;;;;C004"),
    )
    await run(store, workspace)
    before = {p.id: p.change_seq for p in store.iter_profiles()}
    await s3.put_object(
        bucket,
        "households/households-2.csv",
        csv(
            HOUSEHOLD_HEADER,
            "H1;Jansen;;;;C001|C004",  # C002, C003 leave; C004 joins (and stays in H2)
            "H1;Jansen;;;;C001|C002|C004",  # the latest row of H1 in the file wins
            "H2;;;;;",  # an empty member list: H2 is gone
            "H3;Bakker;;;;C999",  # lists members, none matches: H3 exists, without members
        ),
    )

    outcome = await run(store, workspace)

    assert outcome.record.status is RunStatus.SUCCESS
    assert members(store, "H1") == sorted([customers["C001"], customers["C002"], customers["C004"]])
    assert members(store, "H2") is None
    assert members(store, "H3") == []
    counts = outcome.record.counts
    assert (counts.members_removed, counts.groups_deleted, counts.members_unmatched) == (2, 1, 1)
    after = {p.id: p.change_seq for p in store.iter_profiles()}
    moved = {customers["C003"], customers["C004"]}  # left H1; left H2 and joined H1
    assert {pid for pid in after if after[pid] != before[pid]} == moved
    assert store.groups_of_profile(customers["C004"]) == {"household": ["H1"]}


async def test_add_stays_the_default_and_keeps_members_not_listed(
    customers: dict[str, str],
    bucket: str,
    s3: S3Client,
    store: ProfileStore,
    goals_dir: Path,
    moto_endpoint: str,
) -> None:
    workspace = write_workspace(goals_dir, moto_endpoint, HOUSEHOLDS)
    await s3.put_object(bucket, "households/households-1.csv", csv(HOUSEHOLD_HEADER, "H1;;;;;C001"))
    await run(store, workspace)
    await s3.put_object(
        bucket, "households/households-2.csv", csv(HOUSEHOLD_HEADER, "H1;;;;;C002", "H2;;;;;")
    )

    outcome = await run(store, workspace)

    assert members(store, "H1") == sorted([customers["C001"], customers["C002"]])
    assert members(store, "H2") == []
    assert (outcome.record.counts.members_removed, outcome.record.counts.groups_deleted) == (0, 0)


def test_replace_without_a_members_column_is_a_config_error(tmp_path: Path) -> None:
    goal = {key: value for key, value in REPLACING.items() if key != "members"}
    with pytest.raises(ConfigError) as raised:
        write_workspace(tmp_path / "goals", "http://127.0.0.1:1", goal)
    [problem] = raised.value.problems
    assert "members_mode: replace needs `members`" in str(problem)
    assert str(problem).startswith(f"{tmp_path / 'goals' / 'crm.yaml'}:")
