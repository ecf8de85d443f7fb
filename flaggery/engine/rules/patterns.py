"""REGEX constraints with RE2: linear-time matching, no lookaround, no backreferences.

Python's ``re`` backtracks (a pattern can take exponential time on a crafted value), so
patterns are compiled with the ``google-re2`` package. Every REGEX constraint on one attribute
goes into one ``re2.Set``: a request searches the attribute's value once, whatever the number
of patterns. Public ``re2`` API only: ``Options``, ``compile``, ``error``, ``Set.SearchSet``,
``Set.Add``, ``Set.Compile`` (raises ``re2.error`` past RE2's memory budget), ``Set.Match``
(answers ``None`` when nothing matches).
"""

from __future__ import annotations

from collections.abc import Sequence

import re2

__all__ = ["PatternSet", "pattern_error"]


def _options(case_sensitive: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = case_sensitive
    options.never_capture = True  # only "does it match" is asked
    options.log_errors = False  # a refused pattern is reported to the caller, not to stderr
    return options


def pattern_error(pattern: str, case_sensitive: bool) -> str | None:
    """Why RE2 refuses `pattern` (its own message), or ``None`` when it compiles."""
    try:
        re2.compile(pattern, _options(case_sensitive))
    except re2.error as refused:
        reason = refused.args[0] if refused.args else refused
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None


def _encoded(text: str) -> bytes:
    # A lone surrogate (possible in decoded JSON) stays an invalid byte sequence, which RE2
    # matches as no character instead of failing the request.
    return text.encode("utf-8", "surrogatepass")


class PatternSet:
    """Patterns searched together (unanchored, as Unleash does); `matching` answers the
    positions, in `patterns`, of those that match. Every pattern must compile
    (`pattern_error` is ``None``)."""

    __slots__ = ("_searchers",)

    def __init__(self, patterns: Sequence[str], case_sensitive: bool) -> None:
        options = _options(case_sensitive)
        together = re2.Set.SearchSet(options)
        for pattern in patterns:
            together.Add(pattern)
        try:
            together.Compile()
        except re2.error:
            # The combined program outgrew RE2's memory budget: one set per pattern
            # (each pattern compiled alone when its rule was validated).
            self._searchers = [_alone(text, at, options) for at, text in enumerate(patterns)]
        else:
            self._searchers = [(together, tuple(range(len(patterns))))]

    def matching(self, text: str) -> list[int]:
        """Positions of the patterns found in `text`."""
        encoded = _encoded(text)
        found: list[int] = []
        for searcher, positions in self._searchers:
            hits = searcher.Match(encoded)
            if hits:
                found += [positions[hit] for hit in hits]
        return found


def _alone(pattern: str, position: int, options: re2.Options) -> tuple[re2.Set, tuple[int, ...]]:
    searcher = re2.Set.SearchSet(options)
    searcher.Add(pattern)
    searcher.Compile()
    return searcher, (position,)
