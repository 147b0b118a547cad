"""Safe YAML loading that remembers where every key was written.

Pydantic reports a `loc` path; users need a line. We compose the node tree
once, build the data from it ourselves (rejecting duplicate keys and
expanding `${VAR}`), and keep the tree to turn any `loc` into a line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connector.errors import ConfigError, ConfigProblem

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\$")
Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


_BOOL_TAG = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true and false.

    YAML 1.1 also reads yes, no, on, off, y and n as booleans, so the country
    code NO in `one_of: [NL, NO]` became `false` (the "Norway problem") and a
    true_values list lost its spellings. Fields that are booleans still accept
    yes and no: pydantic reads those strings as booleans.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A loaded YAML file: its data and the node tree that says where things are."""

    path: Path
    data: Any
    root: yaml.Node | None
    substituted: frozenset[str] = frozenset()
    """Values `${VAR}` brought in from the environment: blanked in every message."""

    def line_of(self, loc: Loc) -> int | None:
        """The 1-based line of the key at `loc`, or of the nearest enclosing node."""
        node = self.root
        if node is None:
            return None
        line = node.start_mark.line + 1
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = next((pair for pair in node.value if _scalar_equals(pair[0], part)), None)
                if found is None:
                    continue  # a union tag or a missing key: stay on this mapping
                line = found[0].start_mark.line + 1
                node = found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    def validate(self, model: type[M], *, context: Mapping[str, Any] | None = None) -> M:
        """Validate the data, raising ConfigError with one `FILE:LINE: message` per problem."""
        try:
            return model.model_validate(self.data, context=context)
        except ValidationError as error:
            raise ConfigError(self.problems_from(error)) from None

    def problems_from(self, error: ValidationError) -> list[ConfigProblem]:
        return [
            self.problem_for(detail)
            for detail in error.errors(include_input=False, include_url=False)
        ]

    def problem_for(self, detail: ErrorDetails) -> ConfigProblem:
        """One pydantic error as `FILE:LINE: message`.

        A validator that checks a whole list (say, unique names) may point at
        the offending item by raising PydanticCustomError with `ctx["at"]`, a
        loc relative to its own.
        """
        loc: Loc = tuple(detail["loc"]) + tuple(detail.get("ctx", {}).get("at", ()))
        line_loc = (*loc, "type") if detail["type"] == "union_tag_invalid" else loc
        message = _describe(loc, detail)
        # a secret variable used in the wrong field must not be echoed by its error
        for value in sorted(self.substituted, key=len, reverse=True):
            message = message.replace(value, "***")
        return ConfigProblem(self.path, self.line_of(line_loc), message)


def _scalar_equals(node: yaml.Node, part: str | int) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value == str(part)


def _describe(loc: Loc, detail: ErrorDetails) -> str:
    """Pydantic's message with the YAML path in front, and without its noise."""
    path = _dotted(loc)
    kind = detail["type"]
    message = detail["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind == "extra_forbidden":
        return f"unknown key {str(loc[-1])!r}" + (f" in {_dotted(loc[:-1])}" if loc[:-1] else "")
    if kind == "missing":
        return f"missing required key {path!r}"
    if kind == "union_tag_invalid":
        context = detail.get("ctx", {})
        tag, expected = context.get("tag"), context.get("expected_tags")
        return f"{path}.type: unknown goal type {tag!r}; expected {expected}"
    if kind == "union_tag_not_found":
        return f"{path}: missing key 'type' (import-profiles, export-profiles or import-groups)"
    return f"{path}: {message}" if path else message


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif (
            part in ("import-profiles", "export-profiles", "import-groups")
            or part.startswith("function-after[")
            or part.startswith("function-")
        ):
            continue
        else:
            text += f".{part}" if text else part
    return text


def load_yaml(path: Path, environ: Mapping[str, str] | None = None) -> YamlDocument:
    """Read `path` safely; `${VAR}` (or `${VAR:-default}`) comes from `environ`.

    Raises ConfigError for syntax errors, duplicate keys and missing variables,
    each with its line; a variable's value never appears in a message.
    """
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([ConfigProblem(path, None, f"cannot read file: {error}")]) from None
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError([_syntax_problem(path, text, error)]) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigProblem(path, None, f"invalid YAML: {error}")]) from None
    problems: list[ConfigProblem] = []
    data = _construct(root, path, environ, problems) if root is not None else None
    if problems:
        raise ConfigError(problems)
    substituted = frozenset(
        environ[match[1]]
        for match in _VARIABLE.finditer(text)
        if match[1] and len(environ.get(match[1], "")) >= 4
    )
    return YamlDocument(path, data, root, substituted)


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_IN_PROGRESS = object()
_TEXT_KEY_TAGS = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("str", "null", "bool", "int", "float", "timestamp")
)
_SCALAR_KINDS = {
    "tag:yaml.org,2002:timestamp": "date",
    "tag:yaml.org,2002:int": "integer",
    "tag:yaml.org,2002:float": "number",
}


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,") else tag


def _syntax_problem(path: Path, text: str, error: yaml.MarkedYAMLError) -> ConfigProblem:
    """Where the parser gave up, and where the unfinished construct began if elsewhere."""
    last_line = len(text.splitlines()) or 1

    def line_of(mark: yaml.Mark) -> int:
        # at the end of the file the parser stands on the line after the last one
        return min(mark.line + 1, last_line)

    mark = error.problem_mark or error.context_mark
    line = line_of(mark) if mark else None
    reason = error.problem or error.context or "invalid YAML"
    if error.problem and error.context and error.context_mark:
        context_line = line_of(error.context_mark)
        if context_line != line:
            reason += f" ({error.context} at line {context_line})"
    return ConfigProblem(path, line, f"invalid YAML: {reason}")


def _construct(
    node: yaml.Node,
    path: Path,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
    built: dict[int, Any] | None = None,
) -> Any:
    """Plain data from `node`: maps, lists and safe scalars only; never an object."""
    built = {} if built is None else built
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        # An alias is the very same node: build it once (no "billion laughs"), never in a loop.
        if id(node) in built:
            if built[id(node)] is _IN_PROGRESS:
                problems.append(ConfigProblem(path, line, "a YAML alias refers to itself"))
                return None
            return built[id(node)]
        if node.tag not in (_MAP_TAG, _SEQ_TAG):
            problems.append(
                ConfigProblem(path, line, f"unsupported YAML tag {_short_tag(node.tag)}")
            )
            return None
        built[id(node)] = _IN_PROGRESS
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    ConfigProblem(path, key_line, "YAML merge keys (<<) are not supported")
                )
                continue
            if key_node.tag in _TEXT_KEY_TAGS:
                # Keys are names, taken as written: `null:`, `on:` or `1:` mean that text,
                # and `${VAR}` is not expanded (an unknown key is echoed in its message).
                key: Any = key_node.value
            else:
                key = _construct(key_node, path, environ, problems, built)
            if not isinstance(key, Hashable):
                problems.append(ConfigProblem(path, key_line, "a key must be a plain value"))
                continue
            if key in result:
                problems.append(ConfigProblem(path, key_line, f"duplicate key {key!r}"))
                continue
            result[key] = _construct(value_node, path, environ, problems, built)
        built[id(node)] = result
        return result
    if isinstance(node, yaml.SequenceNode):
        items = [_construct(item, path, environ, problems, built) for item in node.value]
        built[id(node)] = items
        return items
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and "$" in node.value:
        return _expand(node, path, environ, problems)
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as error:
        reason = error.problem or f"unsupported YAML tag {_short_tag(node.tag)}"
        if reason.startswith("could not determine a constructor"):
            reason = f"unsupported YAML tag {_short_tag(node.tag)}"
        problems.append(ConfigProblem(path, line, reason))
    except (ValueError, TypeError, OverflowError) as error:
        # e.g. `2024-13-45` looks like a date to YAML but is not one
        kind = _SCALAR_KINDS.get(node.tag, _short_tag(node.tag))
        problems.append(ConfigProblem(path, line, f"{node.value!r} is not a valid {kind}: {error}"))
    return None


def _expand(
    node: yaml.ScalarNode, path: Path, environ: Mapping[str, str], problems: list[ConfigProblem]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, default = match[1], match[2]
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        line = node.start_mark.line + 1
        problems.append(
            ConfigProblem(
                path, line, f"environment variable {name} is not set (used as ${{{name}}})"
            )
        )
        return ""

    return _VARIABLE.sub(substitute, str(node.value))
