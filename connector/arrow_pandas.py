"""Keep pyarrow from importing pandas into a connector process.

pyarrow imports pandas, when it is installed, the first time it converts a
Python list (`pa.array([...])`), only to ask whether the list is a pandas
object. connector never hands Arrow a pandas object, yet every process
paid for that import wherever pandas was installed beside it (a shared
virtual environment, the test and benchmark extras): measured on this
project's 2-core machine, about 0.45 s of a `connector run` and 30-40 MB of
its RSS. pandas is not a dependency of connector.

A finder first on `sys.meta_path` refuses pandas (ModuleNotFoundError, as if
it were not installed), and pyarrow takes the path it takes without pandas.
(`None` in `sys.modules`, Python's usual block, does not work here: pyarrow's
compiled import reads the `None` back as the module.) Only the command line
does this, before any goal runs; where pandas is already imported, it is left
alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

BLOCKED = "pandas"


class _PandasRefused:
    """A meta path finder that answers every import of pandas with "not installed"."""

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == BLOCKED or name.startswith(f"{BLOCKED}."):
            raise ModuleNotFoundError(
                f"No module named {name!r} (connector keeps it out)", name=name
            )
        return None


def keep_pandas_out() -> bool:
    """Refuse pandas for the rest of this process unless it is loaded; True when refused."""
    if BLOCKED in sys.modules:
        return False
    if not any(isinstance(finder, _PandasRefused) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PandasRefused())
    return True
