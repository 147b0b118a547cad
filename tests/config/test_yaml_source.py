"""load_yaml: safe loading, ${VAR} expansion, and a line for every problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from connector.config.yaml_source import YamlDocument, load_yaml
from connector.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "conn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).removeprefix("\n"), encoding="utf-8")
    return path


def load_error(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, environ or {})
    return caught.value


def test_variable_is_replaced_by_its_environment_value(tmp_path: Path) -> None:
    path = write(tmp_path, "key: ${KEY_ID}\nurl: http://${HOST}:9000/\n")
    data = load_yaml(path, {"KEY_ID": "AKIA123", "HOST": "minio"}).data
    assert data == {"key": "AKIA123", "url": "http://minio:9000/"}


def test_default_is_used_only_when_the_variable_is_unset(tmp_path: Path) -> None:
    path = write(tmp_path, "a: ${A:-fallback}\nb: ${B:-fallback}\nc: ${C:-}\n")
    data = load_yaml(path, {"B": "given"}).data
    assert data == {"a": "fallback", "b": "given", "c": ""}


def test_double_dollar_is_a_literal_dollar_and_is_not_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, "price: 5$$\nliteral: $${HOME}\n")
    data = load_yaml(path, {"HOME": "/root"}).data
    assert data == {"price": "5$", "literal": "${HOME}"}


def test_a_variable_value_is_inserted_verbatim_not_expanded_again(tmp_path: Path) -> None:
    path = write(tmp_path, "secret: ${SECRET}\n")
    data = load_yaml(path, {"SECRET": "pa$$${OTHER}", "OTHER": "x"}).data
    assert data == {"secret": "pa$$${OTHER}"}


def test_a_variable_that_looks_like_a_number_stays_text(tmp_path: Path) -> None:
    path = write(tmp_path, "minutes: ${MINUTES}\nliteral: 30\n")
    assert load_yaml(path, {"MINUTES": "30"}).data == {"minutes": "30", "literal": 30}


def test_keys_are_the_text_written_even_when_they_look_like_null_or_numbers(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "null: a\non: b\n1: c\n2024-01-01: d\n")
    assert load_yaml(path, {}).data == {"null": "a", "on": "b", "1": "c", "2024-01-01": "d"}


def test_variables_in_keys_are_not_expanded(tmp_path: Path) -> None:
    path = write(tmp_path, "${NAME}: value\n")
    assert load_yaml(path, {"NAME": "expanded"}).data == {"${NAME}": "value"}


def test_missing_variable_is_reported_with_its_name_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        storage:
          region: eu-west-1
          access_key_id: ${KEY_ID}
          secret_access_key: ${SECRET}
        """,
    )
    error = load_error(path, {"SECRET": "hunter2-do-not-print", "HOME": "/home/zz-home-value"})
    assert [str(problem) for problem in error.problems] == [
        f"{path}:3: environment variable KEY_ID is not set (used as ${{KEY_ID}})"
    ]
    assert "hunter2-do-not-print" not in str(error)
    assert "zz-home-value" not in str(error)


def test_every_missing_variable_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "a: ${FIRST}\nb:\n  - ${SECOND}-${FIRST}\n")
    error = load_error(path)
    assert [(problem.line, problem.message) for problem in error.problems] == [
        (1, "environment variable FIRST is not set (used as ${FIRST})"),
        (3, "environment variable SECOND is not set (used as ${SECOND})"),
        (3, "environment variable FIRST is not set (used as ${FIRST})"),
    ]


def test_duplicate_key_is_reported_at_the_line_of_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        id: crm
        storage:
          region: eu-west-1
          endpoint_url: http://a
          region: eu-west-2
        id: other
        """,
    )
    error = load_error(path)
    assert [str(problem) for problem in error.problems] == [
        f"{path}:5: duplicate key 'region'",
        f"{path}:6: duplicate key 'id'",
    ]


def test_invalid_yaml_is_reported_at_the_line_of_the_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        id: crm
        storage:
          region: eu-west-1
         endpoint_url: http://a
        """,
    )
    error = load_error(path)
    assert len(error.problems) == 1
    problem = error.problems[0]
    assert (problem.file, problem.line) == (str(path), 4)
    assert problem.message.startswith("invalid YAML: ")


def test_unclosed_list_is_reported_where_noticed_naming_where_it_began(tmp_path: Path) -> None:
    path = write(tmp_path, "id: crm\nfiles: [a.csv, b.csv\nname: x\n")
    assert str(load_error(path)) == (
        f"{path}:3: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 2)"
    )


def test_a_syntax_error_at_the_end_of_the_file_points_at_its_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, "id: crm\nname: 'CRM exchange\n")
    problem = load_error(path).problems[0]
    assert (problem.line, problem.message) == (
        2,
        "invalid YAML: found unexpected end of stream",
    )


@pytest.mark.parametrize(
    ("yaml_value", "tag"),
    [
        ('!!python/object/apply:os.mkdir ["{marker}"]', "!!python/object/apply:os.mkdir"),
        ('!!python/object/new:os.mkdir ["{marker}"]', "!!python/object/new:os.mkdir"),
        ("!!python/object:pathlib.Path {{path: '{marker}'}}", "!!python/object:pathlib.Path"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
    ],
)
def test_python_tags_are_rejected_not_executed(tmp_path: Path, yaml_value: str, tag: str) -> None:
    marker = tmp_path / "created-by-yaml"
    path = write(tmp_path, "id: crm\nevil: " + yaml_value.format(marker=marker) + "\n")
    error = load_error(path)
    assert [str(problem) for problem in error.problems] == [f"{path}:2: unsupported YAML tag {tag}"]
    assert not marker.exists()


def test_non_plain_collection_tags_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "id: crm\nobjectives: !!set {marketing, sales}\n")
    assert str(load_error(path)) == f"{path}:2: unsupported YAML tag !!set"


def test_an_impossible_date_is_reported_with_its_line_not_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "segments:\n  - gte: 2024-02-30\n")
    assert str(load_error(path)) == (
        f"{path}:2: '2024-02-30' is not a valid date: day is out of range for month"
    )


def test_recursive_alias_is_reported_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "id: crm\nloop: &self [1, *self]\n")
    assert str(load_error(path)) == f"{path}:2: a YAML alias refers to itself"


def test_merge_keys_are_reported_as_unsupported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        base: &base {bucket: crm-exports}
        source:
          <<: *base
          prefix: daily/
        """,
    )
    assert str(load_error(path)) == f"{path}:3: YAML merge keys (<<) are not supported"


def test_an_alias_is_shared_not_copied_so_alias_bombs_cannot_explode(tmp_path: Path) -> None:
    # Copied per use, `d` would hold 3**4 strings; at 9 levels of 9, billions.
    path = write(
        tmp_path,
        """
        a: &a [x, x, x]
        b: &b [*a, *a, *a]
        c: &c [*b, *b, *b]
        d: [*c, *c, *c]
        """,
    )
    data = load_yaml(path, {}).data
    assert data["d"][2] is data["c"]
    assert data["c"][0] is data["b"]
    assert data["b"][1] is data["a"]


def test_variables_inside_an_aliased_block_are_expanded_everywhere(tmp_path: Path) -> None:
    path = write(tmp_path, "one: &s\n  key: ${KEY}\ntwo: *s\n")
    assert load_yaml(path, {"KEY": "k"}).data == {"one": {"key": "k"}, "two": {"key": "k"}}


def test_a_file_that_is_not_utf8_is_reported_without_a_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    error = load_error(path)
    assert len(error.problems) == 1
    assert error.problems[0].line is None
    assert str(error).startswith(f"{path}: cannot read file: ")


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_key(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffid: crm\n".encode())
    assert load_yaml(path, {}).data == {"id": "crm"}


def test_an_empty_file_has_no_data_and_no_tree(tmp_path: Path) -> None:
    document = load_yaml(write(tmp_path, "# only a comment\n"), {})
    assert (document.data, document.root, document.line_of(("id",))) == (None, None, None)


LINES = """
id: crm
goals:
  - type: import-profiles
    name: nightly
    source:
      bucket: crm-exports
    mappings:
      - {column: email, property: email}
      - column: points
        property: loyalty_points
"""


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        ((), 1),
        (("id",), 1),
        (("goals",), 2),
        (("goals", 0), 3),
        (("goals", 0, "name"), 4),
        (("goals", 0, "source", "bucket"), 6),
        (("goals", 0, "mappings", 1), 9),
        (("goals", 0, "mappings", 1, "property"), 10),
        # pydantic's discriminated-union tag in the loc is not a YAML key
        (("goals", 0, "import-profiles", "source", "bucket"), 6),
        # a missing key points at the mapping it is missing from
        (("goals", 0, "match"), 3),
        (("goals", 0, "source", "prefix"), 5),
        (("storage",), 1),
        # an index past the end stays on the list
        (("goals", 3, "name"), 2),
    ],
)
def test_line_of_finds_the_key_a_loc_names(
    tmp_path: Path, loc: tuple[str | int, ...], line: int
) -> None:
    document = load_yaml(write(tmp_path, LINES), {})
    assert document.line_of(loc) == line


class _Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bucket: str
    minutes: int = 0


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: _Source


def test_validate_reports_every_error_as_file_line_message(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        source:
          minutes: often
          buckt: crm
        """,
    )
    document = load_yaml(path, {})
    with pytest.raises(ConfigError) as caught:
        document.validate(_File)
    assert sorted(str(problem) for problem in caught.value.problems) == sorted(
        [
            f"{path}:1: missing required key 'source.bucket'",
            f"{path}:2: source.minutes: Input should be a valid integer, "
            "unable to parse string as an integer",
            f"{path}:3: unknown key 'buckt' in source",
        ]
    )


def test_a_document_keeps_its_path_data_and_tree(tmp_path: Path) -> None:
    path = write(tmp_path, "source: {bucket: crm}\n")
    document = load_yaml(path, {})
    assert isinstance(document, YamlDocument)
    assert document.path == path
    assert document.validate(_File).source.bucket == "crm"


def test_only_true_and_false_are_booleans_so_country_codes_and_spellings_stay_text(
    tmp_path: Path,
) -> None:
    # YAML 1.1 read NO (Norway), yes, on, off, y and n as booleans
    path = write(
        tmp_path,
        """
        countries: [NL, NO, SE]
        spellings: [yes, no, on, off, y, n, Yes, NO]
        flags: [true, false, True, FALSE]
        """,
    )
    assert load_yaml(path, {}).data == {
        "countries": ["NL", "NO", "SE"],
        "spellings": ["yes", "no", "on", "off", "y", "n", "Yes", "NO"],
        "flags": [True, False, True, False],
    }


def test_a_boolean_field_still_accepts_yes_and_no() -> None:
    class Flags(BaseModel):
        model_config = ConfigDict(extra="forbid")
        enabled: bool
        header: bool

    assert Flags.model_validate({"enabled": "yes", "header": "no"}) == Flags(
        enabled=True, header=False
    )
