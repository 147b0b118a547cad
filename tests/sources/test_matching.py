"""KeyMatcher: wildcard and regex patterns over keys relative to a goal's prefix."""

from __future__ import annotations

import pytest

from connector.sources import KeyMatcher
from connector.sources.matching import wildcard_to_regex


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("*.csv", "a.csv", True),
        ("*.csv", "sub/a.csv", False),  # `*` stays inside one folder
        ("*/*.csv", "sub/a.csv", True),
        ("**.csv", "sub/deeper/a.csv", True),  # `**` crosses folders
        ("**/*.csv", "a.csv", True),  # `**/` may be zero folders
        ("**/*.csv", "x/y/a.csv", True),
        ("sub/**", "sub/x/y.json", True),
        ("sub/**", "other/x.json", False),
        ("file-?.csv", "file-1.csv", True),
        ("file-?.csv", "file-12.csv", False),
        ("a?b", "a/b", False),  # `?` does not match `/`
        ("file-[0-9].csv", "file-7.csv", True),
        ("file-[0-9].csv", "file-x.csv", False),
        ("file-[!0-9].csv", "file-x.csv", True),
        ("file-[!0-9].csv", "file-7.csv", False),
        ("a[!x]b", "a/b", False),  # a negated class does not match `/` either
        ("[]]x", "]x", True),
        ("[x", "[x", True),  # unclosed `[` is literal
        ("profiles (1).csv", "profiles (1).csv", True),  # regex syntax is literal
        ("a.csv", "abcsv", False),
        ("*.CSV", "a.csv", False),  # case-sensitive, like S3 keys
    ],
)
def test_wildcards(pattern: str, key: str, expected: bool) -> None:
    assert KeyMatcher([pattern]).matches(key) is expected


def test_any_pattern_may_match() -> None:
    matcher = KeyMatcher(["*.csv", "*.json"])
    assert matcher.matches("a.csv")
    assert matcher.matches("a.json")
    assert not matcher.matches("a.txt")


def test_regex_must_match_whole_relative_key() -> None:
    matcher = KeyMatcher([r"regex:profiles-\d{8}\.csv(\.gz)?"], prefix="in/")
    assert matcher.matches("in/profiles-20261123.csv")
    assert matcher.matches("in/profiles-20261123.csv.gz")
    assert not matcher.matches("in/profiles-20261123.csv.bak")
    assert not matcher.matches("in/old/profiles-20261123.csv")


@pytest.mark.parametrize("pattern", ["**", "*", "regex:.*"])
@pytest.mark.parametrize("key", ["in/a.csv.done", "in/sub/", "in/"])
def test_done_markers_and_folders_never_match(pattern: str, key: str) -> None:
    assert not KeyMatcher([pattern], prefix="in/").matches(key)


def test_prefix_is_stripped_before_matching() -> None:
    matcher = KeyMatcher(["*.csv"], prefix="exports/daily/")
    assert matcher.matches("exports/daily/a.csv")
    assert not matcher.matches("exports/daily/x/a.csv")
    assert not matcher.matches("elsewhere/a.csv")
    assert not matcher.matches("a.csv")


def test_prefix_without_trailing_slash_acts_as_folder() -> None:
    matcher = KeyMatcher(["*.csv"], prefix="exports")
    assert matcher.matches("exports/a.csv")
    assert not matcher.matches("exports2/a.csv")


def test_no_patterns_match_nothing() -> None:
    assert not KeyMatcher([]).matches("a.csv")


def test_invalid_regex_is_a_clear_value_error() -> None:
    with pytest.raises(ValueError, match=r"'regex:\(unclosed' is not a valid regular expression"):
        KeyMatcher(["*.csv", "regex:(unclosed"])


def test_reversed_class_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a valid wildcard"):
        KeyMatcher(["file-[z-a].csv"])


@pytest.mark.parametrize("pattern", ["", "regex:"])
def test_empty_pattern_is_a_value_error(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"empty|no regular expression"):
        KeyMatcher([pattern])


def test_single_string_instead_of_list_is_rejected() -> None:
    with pytest.raises(TypeError):
        KeyMatcher("*.csv")


def test_wildcard_translation() -> None:
    assert wildcard_to_regex("a/*.csv") == r"a/[^/]*\.csv"
    assert wildcard_to_regex("**/x?") == "(?:.*/)?x[^/]"
