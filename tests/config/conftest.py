"""A goals folder in tmp_path, written from dedented YAML, and ways to read its errors."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from connector.config import Workspace, load_workspace
from connector.errors import ConfigError, ConfigProblem


class GoalsFolder:
    """Write connection and segment files, then load the folder as the daemon would."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, name: str, text: str) -> Path:
        """Write `text` (dedented, so line 1 is the first line after the opening quotes)."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).removeprefix("\n"), encoding="utf-8")
        return target

    def load(self, environ: Mapping[str, str] | None = None) -> Workspace:
        return load_workspace(self.path, environ or {})

    def error(self, environ: Mapping[str, str] | None = None) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            load_workspace(self.path, environ or {})
        return caught.value

    def problems(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Every problem as printed, `FILE:LINE: message`, with FILE relative to the folder."""
        return [self.relative(problem) for problem in self.error(environ).problems]

    def only_problem(self, environ: Mapping[str, str] | None = None) -> ConfigProblem:
        problems = self.error(environ).problems
        assert len(problems) == 1, [str(problem) for problem in problems]
        return problems[0]

    def relative(self, problem: ConfigProblem) -> str:
        return str(problem).removeprefix(f"{self.path}/")

    def expect(
        self, file: Path, line: int, message: str, environ: Mapping[str, str] | None = None
    ) -> ConfigProblem:
        """Loading fails with exactly one problem, printed `FILE:LINE: message`."""
        problem = self.only_problem(environ)
        assert (problem.file, problem.line, problem.message) == (str(file), line, message)
        assert str(problem) == f"{file}:{line}: {message}"
        return problem


@pytest.fixture
def goals(tmp_path: Path) -> GoalsFolder:
    folder = tmp_path / "goals"
    folder.mkdir()
    return GoalsFolder(folder)
