"""The goals folder as a whole: every connection file plus `segments.yaml`, checked together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connector.config.connection import Connection
from connector.config.goal_parts import PROFILE_ID
from connector.config.segments import ALL_SEGMENT, Segment, SegmentsFile
from connector.config.yaml_source import YamlDocument, load_yaml
from connector.errors import ConfigError, ConfigProblem, NotFoundError
from connector.exports.model import ExportProfilesGoal
from connector.imports.model import ImportProfilesGoal
from connector.redaction import register_secrets

SEGMENTS_FILE_STEM = "segments"


@dataclass(frozen=True)
class Workspace:
    """A consistent, validated view of the goals folder."""

    goals_dir: Path
    connections: dict[str, Connection] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    segments: dict[str, Segment] = field(default_factory=dict)

    def connection(self, connection_id: str) -> Connection:
        """The connection with this id; NotFoundError (a KeyError) names the ones there are."""
        try:
            return self.connections[connection_id]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none"
            raise NotFoundError(
                f"no connection {connection_id!r} in {self.goals_dir} (connections: {known})"
            ) from None

    def resolve_path(self, relative: str) -> Path:
        """A path written in a goal file, relative to the goals folder."""
        path = Path(relative)
        return path if path.is_absolute() else self.goals_dir / path


def goal_files(goals_dir: Path) -> list[Path]:
    """The YAML files of the goals folder, in a stable order."""
    return sorted(
        path
        for path in goals_dir.iterdir()
        if path.suffix in (".yaml", ".yml") and path.is_file() and not path.name.startswith(".")
    )


def load_workspace(goals_dir: Path, environ: Mapping[str, str] | None = None) -> Workspace:
    """Load and cross-check every file; ConfigError carries every problem of every file."""
    if not goals_dir.is_dir():
        raise ConfigError([ConfigProblem(goals_dir, None, "goals folder does not exist")])
    problems: list[ConfigProblem] = []
    segments, documents = _read_files(goals_dir, environ, problems)
    workspace = Workspace(goals_dir)
    parsed: dict[str, YamlDocument] = {}
    for document in documents:
        if not isinstance(document.data, dict):
            problems.append(ConfigProblem(document.path, 1, "a connection file must be a mapping"))
            continue
        data = {"id": document.path.stem, **document.data}
        with_id = YamlDocument(document.path, data, document.root, document.substituted)
        try:
            connection = with_id.validate(Connection)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if connection.id in workspace.connections:
            other = workspace.files[connection.id].name
            line = document.line_of(("id",))
            problems.append(
                ConfigProblem(
                    document.path, line, f"connection id {connection.id!r} is also used by {other}"
                )
            )
            continue
        problems.extend(_cross_check(connection, document, segments, goals_dir))
        parsed[connection.id] = with_id
        workspace.connections[connection.id] = connection
        workspace.files[connection.id] = document.path
    workspace.segments.update(segments)
    problems.extend(_normalize_disagreements(workspace, parsed))
    if problems:
        raise ConfigError(problems)
    register_secrets(_secrets(workspace))
    return workspace


def _read_files(
    goals_dir: Path, environ: Mapping[str, str] | None, problems: list[ConfigProblem]
) -> tuple[dict[str, Segment], list[YamlDocument]]:
    """The segments file's segments and every connection file's document, unvalidated."""
    segments: dict[str, Segment] = {}
    documents: list[YamlDocument] = []
    for path in goal_files(goals_dir):
        try:
            document = load_yaml(path, environ)
        except ConfigError as error:
            problems.extend(error.problems)
            continue
        if path.stem == SEGMENTS_FILE_STEM:
            if document.data is None:
                continue  # an empty segments file defines no segments
            if not isinstance(document.data, dict):
                message = "a segments file must be a mapping with a `segments:` list"
                problems.append(ConfigProblem(path, 1, message))
                continue
            try:
                segments_file = document.validate(SegmentsFile)
            except ConfigError as error:
                problems.extend(error.problems)
            else:
                segments = {segment.id: segment for segment in segments_file.segments}
        else:
            documents.append(document)
    return segments, documents


def _normalize_disagreements(
    workspace: Workspace, documents: Mapping[str, YamlDocument]
) -> list[ConfigProblem]:
    """Goals that match on one property must normalise its keys alike: the store keeps
    one normalisation per property, and keys written two ways would make two profiles."""
    uses: dict[str, list[tuple[str, YamlDocument, int, str]]] = {}
    for connection_id, connection in workspace.connections.items():
        for index, goal in enumerate(connection.goals):
            if isinstance(goal, ImportProfilesGoal) and goal.match.property != PROFILE_ID:
                uses.setdefault(goal.match.property, []).append(
                    (goal.match.normalize, documents[connection_id], index, goal.name)
                )
    problems = []
    for name, found in sorted(uses.items()):
        modes = sorted({mode for mode, *_ in found})
        if len(modes) < 2:
            continue
        listing = ", ".join(
            f"{mode} ({document.path.name} goal {goal})" for mode, document, _i, goal in found
        )
        for _mode, document, index, _goal in found:
            line = document.line_of(("goals", index, "match", "normalize"))  # else `match`
            problems.append(
                ConfigProblem(
                    document.path,
                    line,
                    f"match.normalize: goals matching on {name!r} disagree ({listing}); "
                    "give them all the same normalize",
                )
            )
    return problems


def _secrets(workspace: Workspace) -> list[str]:
    """Every S3 credential of every connection, to be blanked wherever it would be shown."""
    return [
        secret.get_secret_value()
        for connection in workspace.connections.values()
        for secret in (
            connection.storage.access_key_id,
            connection.storage.secret_access_key,
            connection.storage.session_token,
        )
        if secret is not None
    ]


def _cross_check(
    connection: Connection, document: YamlDocument, segments: Mapping[str, Segment], goals_dir: Path
) -> list[ConfigProblem]:
    """What one file cannot know alone: segment ids, key files."""
    problems = []
    for index, goal in enumerate(connection.goals):
        if not isinstance(goal, ExportProfilesGoal):
            continue
        if goal.segment != ALL_SEGMENT and goal.segment not in segments:
            known = ", ".join([ALL_SEGMENT, *sorted(segments)])
            line = document.line_of(("goals", index, "segment"))
            problems.append(
                ConfigProblem(
                    document.path, line, f"unknown segment {goal.segment!r} (segments: {known})"
                )
            )
        for column_index, column in enumerate(goal.columns):
            unknown = [s for s in column.segments or () if s != ALL_SEGMENT and s not in segments]
            if unknown:
                line = document.line_of(("goals", index, "columns", column_index, "segments"))
                problems.append(
                    ConfigProblem(document.path, line, f"unknown segment(s): {', '.join(unknown)}")
                )
        if goal.encryption is not None:
            key_file = Path(goal.encryption.public_key_file)
            key_path = key_file if key_file.is_absolute() else goals_dir / key_file
            if not key_path.is_file():
                line = document.line_of(("goals", index, "encryption", "public_key_file"))
                problems.append(
                    ConfigProblem(document.path, line, f"public key file {key_path} not found")
                )
    return problems
