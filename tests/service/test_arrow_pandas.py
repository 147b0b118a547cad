"""pyarrow does not pull pandas into a connector process (see `connector.arrow_pandas`).

pandas is installed here (the test extra), as it is in a virtual environment
shared with a user's notebooks. Imports are process-wide, so each case runs
in a fresh interpreter.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from helpers import python_output

ARROW_WORK = """
import sys
import pyarrow as pa
import pyarrow.compute as pc
column = pa.array(["a", "b", None])
assert pc.equal(column, "a").to_pylist() == [True, False, None]
assert pa.scalar("x").as_py() == "x"
assert pa.table({"id": ["p1"]}).num_rows == 1
print("pandas loaded" if "pandas" in sys.modules else "pandas not loaded")
"""


def _last_line(script: str, env: dict[str, str] | None = None) -> str:
    return python_output(script, env)[-1]


@pytest.fixture(autouse=True)
def _pandas_installed() -> None:
    if importlib.util.find_spec("pandas") is None:
        pytest.fail("these tests need pandas installed (the dev extra has it)")


def test_pyarrow_alone_imports_pandas_on_its_first_list() -> None:
    # why the module exists: if pyarrow stops doing this, `keep_pandas_out` can go
    assert _last_line(ARROW_WORK) == "pandas loaded"


def test_kept_out_arrow_works_the_same_without_pandas() -> None:
    script = "from connector.arrow_pandas import keep_pandas_out\nkeep_pandas_out()\n" + ARROW_WORK
    assert _last_line(script) == "pandas not loaded"


def test_pandas_then_answers_as_not_installed() -> None:
    script = (
        "from connector.arrow_pandas import keep_pandas_out\n"
        "print(keep_pandas_out(), keep_pandas_out())\n"
        "try:\n"
        "    import pandas\n"
        "except ModuleNotFoundError as error:\n"
        "    print(error.name, 'keeps it out' in str(error))"
    )
    assert _last_line(script) == "pandas True"


def test_pandas_already_imported_is_left_alone() -> None:
    script = (
        "import pandas\n"
        "from connector.arrow_pandas import keep_pandas_out\n"
        "import pyarrow as pa\n"
        "print(keep_pandas_out(), pa.Table.from_pandas(pandas.DataFrame({'a': [1]})).num_rows)"
    )
    assert _last_line(script) == "False 1"


def test_a_command_keeps_pandas_out_before_its_goals_run(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CONNECTOR_")}
    (tmp_path / "goals").mkdir()
    env |= {
        "CONNECTOR_GOALS_DIR": str(tmp_path / "goals"),
        "CONNECTOR_DATABASE": str(tmp_path / "connector.db"),
    }
    script = "from connector.cli import main\nprint(main(['validate']))\n" + ARROW_WORK
    assert _last_line(script, env) == "pandas not loaded"
