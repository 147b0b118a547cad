"""Which keys under a goal's prefix the goal imports.

Goals name their files with wildcards (`exports/*.csv`) or, when that is not
enough, with `regex:` patterns. fnmatch is not used because its `*` crosses
`/`, which would silently pull in files from sub-folders.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["REGEX_PREFIX", "KeyMatcher", "wildcard_to_regex"]

REGEX_PREFIX = "regex:"

# Never imported: "folder" markers, and files a previous run marked as done.
_REJECTED_SUFFIXES = ("/", ".done")


def wildcard_to_regex(pattern: str) -> str:
    """Translate a wildcard into a regular expression for `re.fullmatch`.

    `*` is any run of characters except `/`; `**` any run including `/`, and
    `**/` zero or more whole folders (so `**/*.csv` also matches `a.csv`);
    `?` one character except `/`; `[abc]`, `[a-z]` and `[!abc]` a class. A `[`
    without a closing `]` is literal.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            if pattern.startswith("**", i):
                if pattern.startswith("**/", i):
                    out.append("(?:.*/)?")
                    i += 3
                else:
                    out.append(".*")
                    i += 2
                continue
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = _class_end(pattern, i)
            if end is None:
                out.append(re.escape(char))
            else:
                out.append(_class_to_regex(pattern[i + 1 : end]))
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int | None:
    """Index of the `]` closing the class opened at `start`, or None."""
    j = start + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # a leading ] is a member
        j += 1
    end = pattern.find("]", j)
    return end if end != -1 else None


def _class_to_regex(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    # Escape every member but `-` (ranges) so nothing in it is regex syntax.
    members = "".join(c if c == "-" else re.escape(c) for c in body)
    # A negated class must still not match `/`, like `*` and `?`.
    return f"[^{members}/]" if negate else f"[{members}]"


class KeyMatcher:
    """Which keys under a goal's prefix a goal imports.

    Patterns see the key relative to `prefix`. A prefix without a trailing `/`
    behaves like the same prefix with one for keys inside that folder, because
    people write both. An empty pattern list matches nothing.
    """

    __slots__ = ("_compiled", "patterns", "prefix")

    def __init__(self, patterns: Sequence[str], *, prefix: str = "") -> None:
        if isinstance(patterns, str):
            raise TypeError("patterns must be a sequence of strings, not one string")
        self.patterns = tuple(patterns)
        self.prefix = prefix
        self._compiled = tuple(_compile(pattern) for pattern in self.patterns)

    def matches(self, key: str) -> bool:
        """True if the goal imports `key` (a full S3 key, prefix included)."""
        if key.endswith(_REJECTED_SUFFIXES) or not key.startswith(self.prefix):
            return False
        relative = key[len(self.prefix) :]
        if self.prefix and not self.prefix.endswith("/"):
            relative = relative.removeprefix("/")
        if not relative:
            return False
        return any(regex.fullmatch(relative) for regex in self._compiled)

    def __repr__(self) -> str:
        return f"KeyMatcher({list(self.patterns)!r}, prefix={self.prefix!r})"


def _compile(pattern: str) -> re.Pattern[str]:
    if pattern.startswith(REGEX_PREFIX):
        source = pattern[len(REGEX_PREFIX) :]
        if not source:
            raise ValueError(f"pattern {pattern!r} has no regular expression after 'regex:'")
        try:
            return re.compile(source)
        except re.error as exc:
            raise ValueError(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from exc
    if not pattern:
        raise ValueError("a pattern is empty")
    try:
        # DOTALL: keys may contain newlines, and `**` must still cross them.
        return re.compile(wildcard_to_regex(pattern), re.DOTALL)
    except re.error as exc:  # e.g. a reversed range such as [z-a]
        raise ValueError(f"pattern {pattern!r} is not a valid wildcard: {exc}") from exc
