"""JSON Schemas (draft 2020-12) of a connection file and of `segments.yaml`, for YAML editors.

They are generated from the pydantic models `connector validate` uses, so the two agree on
keys, types and allowed values: an unknown key is an error at every level (the models forbid
extra keys). The checks the models make in validators across fields (one schedule form,
one column source, ...) are restated below as schema rules, beside the name of the model they
belong to, and the tests hold both to the same verdicts. What a schema cannot know (whether a
time zone or an encoding exists, unique goal names, segment ids of other files) is left to
`validate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from connector.config.connection import Connection
from connector.config.formats import ImportFormat
from connector.config.goal_parts import PROFILE_ID, Mapping, ProfileMatch, Source
from connector.config.schedule import SCHEDULE_FORMS, Schedule
from connector.config.segments import CONDITION_OPERATORS, Condition, SegmentsFile
from connector.exports.model import ExportColumn
from connector.groups.model import ImportGroupsGoal
from connector.imports.model import ImportProfilesGoal

DRAFT = "https://json-schema.org/draft/2020-12/schema"
JsonSchema = dict[str, Any]


def connection_schema() -> JsonSchema:
    """The schema of one connection file of the goals folder."""
    schema = _generate(
        Connection,
        title="connector connection file",
        description="A connection: S3 access, schedule, notifications, consent and goals. "
        "Check it fully with `connector validate`.",
    )
    schema["required"].remove("id")  # the loader gives the file's stem
    return schema


def segments_schema() -> JsonSchema:
    """The schema of the goals folder's `segments.yaml`."""
    return _generate(
        SegmentsFile,
        title="connector segments file",
        description="Segments: named conditions on profile properties, used by export goals. "
        "Check it fully with `connector validate`.",
    )


def render(schema: JsonSchema) -> str:
    """The text shipped in goals/*.schema.json and printed by `connector schema`."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def _generate(model: type[BaseModel], *, title: str, description: str) -> JsonSchema:
    generated = model.model_json_schema(mode="validation")
    definitions = generated.get("$defs", {})
    for node in _nodes(generated):
        node.pop("discriminator", None)  # OpenAPI's, not a 2020-12 keyword; oneOf decides alone
        for name, field in node.get("properties", {}).items():
            # pydantic leaves a $ref field without a title, and without a description that
            # repeats its model's: editors show the field's own
            field.setdefault("title", name.replace("_", " ").title())
            if "$ref" in field and "description" not in field:
                referred = definitions[field["$ref"].removeprefix("#/$defs/")]
                field["description"] = referred.get("description", "")

    _allow_variables(generated)
    for rule_model, rule in _RULES.items():
        definition = generated.get("$defs", {}).get(rule_model.__name__)
        if definition is not None:
            definition.setdefault("allOf", []).extend(rule())
    return {"$schema": DRAFT, **generated, "title": title, "description": description}


def _nodes(schema: Any) -> Iterable[JsonSchema]:
    """Every object in the schema, depth first."""
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _nodes(value)


_VARIABLE_DEF = "EnvironmentVariable"
_VARIABLE = {
    "title": "${VAR}",
    "description": "Replaced by the environment variable before the file is checked "
    "(`${VAR:-default}` gives a default); `connector validate` checks the result.",
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
}
_ANNOTATIONS = frozenset({"title", "description", "default"})
_SCALAR_TYPES = frozenset({"integer", "number", "boolean"})


def _allow_variables(schema: JsonSchema) -> None:
    """Let a value that holds a `${VAR}` pass where the literal text would fail.

    An editor sees `every_minutes: ${MINUTES}` or `bucket: ${BUCKET}` before the loader
    replaces the variable; `validate` judges the value after. Unconstrained text needs no
    such alternative, and `const` (a goal's type) stays literal.
    """
    constrained = list(_constrained_values(schema))
    for node in constrained:
        value = {key: node.pop(key) for key in list(node) if key not in _ANNOTATIONS}
        node["anyOf"] = [value, {"$ref": f"#/$defs/{_VARIABLE_DEF}"}]
    if constrained:
        schema.setdefault("$defs", {})[_VARIABLE_DEF] = _VARIABLE


def _constrained_values(schema: Any) -> Iterable[JsonSchema]:
    """The outermost constrained value schemas, outside `not` (a variable never matches one)."""
    if isinstance(schema, dict):
        if _constrained(schema):
            yield schema
            return
        for key, value in schema.items():
            if key != "not":
                yield from _constrained_values(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _constrained_values(value)


def _constrained(node: JsonSchema) -> bool:
    """A value schema that a `${VAR}` text would fail."""
    kind = node.get("type")
    if not isinstance(kind, str | None):
        return False  # a `properties` mapping with a field called `type`
    if kind in _SCALAR_TYPES:
        return True
    if kind == "string":
        return any(key in node for key in ("pattern", "enum", "anyOf", "minLength", "maxLength"))
    return kind is None and "enum" in node


def _given(name: str) -> JsonSchema:
    """The key is present with a value: the models read `key: null` as not given."""
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _any_given(names: Iterable[str]) -> JsonSchema:
    return {"anyOf": [_given(name) for name in names]}


def _is(name: str, *values: object) -> JsonSchema:
    return {"required": [name], "properties": {name: {"enum": list(values)}}}


def _schedule() -> list[JsonSchema]:
    """Schedule._exactly_one_form."""
    return [{"oneOf": [_given(form) for form in SCHEDULE_FORMS]}]


def _source() -> list[JsonSchema]:
    """Source._one_age_limit."""
    return [{"not": {"allOf": [_given("modified_since"), _given("max_age_days")]}}]


def _mapping() -> list[JsonSchema]:
    """Mapping._sum_needs_numbers."""
    number = {"properties": {"type": {"enum": ["number", None]}}}
    return [{"if": _is("rule", "sum"), "then": number}]


def _profile_match() -> list[JsonSchema]:
    """ProfileMatch._normalize_a_property."""
    matched_by_property = {
        "required": ["property"],
        "properties": {"property": {"not": {"const": PROFILE_ID}}},
    }
    return [{"if": _is("normalize", "lowercase", "email"), "then": matched_by_property}]


def _import_format() -> list[JsonSchema]:
    """ImportFormat._columns_when_headerless."""
    columns = {"required": ["columns"], "properties": {"columns": {"type": "array", "minItems": 1}}}
    return [
        {"if": _is("header", False), "then": columns, "else": {"not": _given("columns")}},
    ]


def _import_profiles_goal() -> list[JsonSchema]:
    """ImportProfilesGoal._something_to_import."""
    mappings = {"required": ["mappings"], "properties": {"mappings": {"minItems": 1}}}
    return [{"anyOf": [mappings, _is("map_all_columns", True)]}]


def _import_groups_goal() -> list[JsonSchema]:
    """ImportGroupsGoal._replace_needs_members."""
    return [{"if": _is("members_mode", "replace"), "then": _given("members")}]


def _export_column() -> list[JsonSchema]:
    """ExportColumn._one_source (its one source; `segments` and `group_type` with their value)."""
    return [
        {"oneOf": [_given("value"), _given("property"), _given("text")]},
        {"if": _given("hash"), "then": {"anyOf": [_given("property"), _is("value", PROFILE_ID)]}},
        {"if": _given("segments"), "then": _is("value", "segments")},
        {
            "if": _is("value", "groups"),
            "then": _given("group_type"),
            "else": {"not": _given("group_type")},
        },
    ]


def _condition() -> list[JsonSchema]:
    """Condition._one_kind: `all`, `any` or a property with at least one operator."""
    return [
        {"oneOf": [_given("all"), _given("any"), _given("property")]},
        {"if": _given("property"), "then": _any_given(CONDITION_OPERATORS)},
        {"if": _any_given(CONDITION_OPERATORS), "then": _given("property")},
    ]


_RULES: dict[type[BaseModel], Callable[[], list[JsonSchema]]] = {
    Schedule: _schedule,
    Source: _source,
    Mapping: _mapping,
    ProfileMatch: _profile_match,
    ImportFormat: _import_format,
    ImportProfilesGoal: _import_profiles_goal,
    ImportGroupsGoal: _import_groups_goal,
    ExportColumn: _export_column,
    Condition: _condition,
}
"""Schema rules for the checks a model makes across its fields, by model."""
