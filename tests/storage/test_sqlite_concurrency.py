"""Several connections on one store file: WAL snapshots for readers, busy writers fail clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connector.errors import StoreError
from connector.storage import Profile, SQLiteStore, Trigger
from connector.storage.sqlite import store as sqlite_module

READER = """
import json, sys
from connector.storage import SQLiteStore
with SQLiteStore(sys.argv[1]) as store:
    print(json.dumps({
        "count": store.count_profiles(),
        "ids": [p.id for p in store.iter_profiles()],
        "p1": store.get_profile("p1").properties,
        "change_seq": store.change_seq(),
    }))
"""


def read_in_another_process(path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READER, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_another_process_reads_the_last_commit_while_a_transaction_is_open(
    db_path: Path,
) -> None:
    with SQLiteStore(db_path) as store:
        with store.transaction() as tx:
            tx.save_profiles([Profile("p1", {"name": ["Ann"]})])

        with store.transaction() as tx:
            tx.save_profiles([Profile("p1", {"name": ["Changed"]}), Profile("p2")])
            during = read_in_another_process(db_path)

        after = read_in_another_process(db_path)

    assert during == {"count": 1, "ids": ["p1"], "p1": {"name": ["Ann"]}, "change_seq": 1}
    assert after == {"count": 2, "ids": ["p1", "p2"], "p1": {"name": ["Changed"]}, "change_seq": 2}


def test_transaction_on_a_store_busy_with_another_writer_raises_after_the_timeout(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_MS", 200)
    with SQLiteStore(db_path) as writer, SQLiteStore(db_path) as second:
        with writer.transaction() as tx:
            tx.save_profiles([Profile("p1")])
            started = time.monotonic()
            with pytest.raises(StoreError, match="busy or locked"), second.transaction():
                pytest.fail("the second transaction must not begin")
            waited = time.monotonic() - started

            with pytest.raises(StoreError, match="busy or locked"):
                second.start_run("crm", None, Trigger.MANUAL)

        assert waited >= 0.15  # it waited for the writer, then gave up
        with second.transaction() as tx:  # free again once the writer committed
            tx.save_profiles([Profile("p2")])
        assert second.count_profiles() == 2
