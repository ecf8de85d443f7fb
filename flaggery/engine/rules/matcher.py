"""Every rule group's rule, compiled once per snapshot and matched per request.

Compilation numbers the distinct predicates of all rules (a constraint repeated in ten groups,
or used inverted in one and plain in another, is one predicate) and turns each constraint set
into two bit masks: the predicates that must hold and those that must not. A request reads
each attribute the rules name once, evaluates each distinct predicate at most once into one
integer of bits, and a set matches when ``truth & must == must and not truth & must_not``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from flaggery.engine.rules.constraint import Constraint, Rule
from flaggery.engine.rules.operands import Attribute, text_of
from flaggery.engine.rules.patterns import PatternSet
from flaggery.engine.rules.predicates import (
    Predicate,
    Reader,
    compile_predicate,
    predicate_key,
)

__all__ = ["CURRENT_TIME", "KNOWN_TRUTHS", "KNOWN_VALUES", "RuleMatch", "RuleMatcher"]

CURRENT_TIME = "currentTime"
"""The attribute DATE operators read; when a request has none, the caller's clock."""
_USER_ID, _TARGETING_KEY = "userId", "targetingKey"
_INT64 = 2**63
_UINT64_END = 2**64
KNOWN_VALUES = 4_096
"""Evaluated values kept per attribute; all go at once when full. Attributes of a few thousand
values (account ids, counts) are common: 1,024 emptied itself before values repeated (in
bench/ofrep_path_bench.py's ofrep-rules, whose accounts and session counts take 2,000 values
each, 1.5 attributes a request were evaluated afresh besides the clock; none with 4,096 once
warm). At most 4,096 x 256 characters per attribute and snapshot."""

KNOWN_TRUTHS = 16_384
"""Matches kept per distinct truth (which predicates hold: an int, and a small tuple of group
names), all going at once when full: a few MB at most. Contexts with a few attributes of many
values each (accounts, counts) make thousands of truths, which a smaller memo would forget
before they repeat (bench/ofrep_path_bench.py, ofrep-rules)."""
KNOWN_LENGTH = 256
"""Text longer than this is evaluated every time, not kept (see KNOWN_VALUES)."""

_Test = Callable[[Any], bool]


class RuleMatch(NamedTuple):
    """Which rule groups a request's context matched, for explanations."""

    groups: tuple[str, ...]
    """Matched rule groups, in name order."""
    sets: tuple[int, ...]
    """For each matched group, the position of the first constraint set that matched."""


class _Attribute(NamedTuple):
    name: str
    known: dict[object, int]
    """value (text) or (type, value) -> its bits, for values already evaluated (at most
    KNOWN_VALUES; per snapshot, as the matcher is). Dict operations are atomic: threads may
    share it. Text is its own key, so text (most attributes) is read with one lookup."""
    tests: _Tests


class _Tests(NamedTuple):
    reads: tuple[tuple[Reader, tuple[tuple[int, _Test], ...]], ...]
    patterns: tuple[tuple[PatternSet, tuple[int, ...]], ...]
    """Pattern sets (case-sensitive, case-insensitive) and the bit of each pattern."""
    when_missing: int
    """Bits of the predicates that hold when the request lacks the attribute (NOT_IN)."""
    known: dict[object, int]
    """The attribute's `_Attribute.known` (the same dict)."""
    clock: _Clock | None
    """For ``currentTime`` when only DATE operators read it: the caller's clock's bits,
    kept while the clock stays between two of their dates (None: evaluated each time)."""


class _Clock:
    """The bits of DATE predicates for the caller's clock, kept for the open interval
    between the two dates of the predicates around the last instant asked for: no date lies
    inside it, so every DATE_AFTER and DATE_BEFORE answers alike for any instant in it. An
    instant equal to a date is evaluated and not kept. Thread-safe: `_span` is replaced by
    one assignment."""

    __slots__ = ("_dates", "_span")

    _NEVER = (datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), 0)

    def __init__(self, dates: list[datetime]) -> None:
        self._dates = sorted(set(dates))
        self._span: tuple[datetime, datetime, int] = self._NEVER
        """(after, before, bits): `bits` hold for every instant strictly between."""

    def bits(self, now: datetime, tests: _Tests) -> int:
        """The bits of `tests` (DATE predicates only) for the aware instant `now`."""
        after, before, bits = self._span
        if after < now < before:
            return bits
        bits = _evaluate(tests, now)
        dates = self._dates
        index = bisect_left(dates, now)
        if index == len(dates) or dates[index] != now:
            after = dates[index - 1] if index else self._NEVER[1]
            before = dates[index] if index < len(dates) else self._NEVER[0]
            self._span = (after, before, bits)
        return bits


_Row = tuple[str, int, int, int]
"""(group, position of the set in its rule, must, must_not): one constraint set."""


class RuleMatcher:
    """The compiled rules of a snapshot's rule groups (group name -> rule)."""

    __slots__ = (
        "_attributes",
        "_compiled",
        "_groups",
        "_keys",
        "_matches",
        "_rows",
        "_rules",
    )

    def __init__(self, rules: Mapping[str, Rule], previous: RuleMatcher | None = None) -> None:
        """Compile `rules`; what `previous` compiled is reused (a change to one rule compiles
        only its new constraints)."""
        self._rules = dict(rules)
        # constraint -> its predicate_key (sorting 10,000 values once, not per build), and
        # key -> its predicate (None: the constraint fails closed).
        self._keys: dict[Constraint, Constraint] = {}
        self._compiled: dict[Constraint, Predicate | None] = {}
        bits: dict[Constraint, int] = {}
        predicates: list[Predicate] = []
        rows: list[_Row] = []
        for name in sorted(rules):
            for position, constraint_set in enumerate(rules[name]):
                must = must_not = 0
                for constraint in constraint_set:
                    key = self._key(constraint, previous)
                    predicate = self._predicate(key, previous)
                    if predicate is None:
                        must = must_not = -1  # fails closed: no request holds and lacks a bit
                        break
                    if key not in bits:
                        bits[key] = 1 << len(predicates)
                        predicates.append(predicate)
                    bit = bits[key]
                    if constraint.inverted:
                        must_not |= bit
                    else:
                        must |= bit
                rows.append((name, position, must, must_not))
        self._groups = frozenset(rules)
        self._rows = tuple(rows)
        self._matches: dict[int, RuleMatch] = {}
        self._attributes = _by_attribute(predicates)

    def _key(self, constraint: Constraint, previous: RuleMatcher | None) -> Constraint:
        key = self._keys.get(constraint)
        if key is None:
            key = previous._keys.get(constraint) if previous is not None else None
            self._keys[constraint] = key = key or predicate_key(constraint)
        return key

    def _predicate(self, key: Constraint, previous: RuleMatcher | None) -> Predicate | None:
        if key not in self._compiled:
            if previous is not None and key in previous._compiled:
                self._compiled[key] = previous._compiled[key]
            else:
                self._compiled[key] = compile_predicate(key)
        return self._compiled[key]

    def __bool__(self) -> bool:
        return bool(self._groups)

    def __eq__(self, other: object) -> bool:
        """Matchers of the same rules are equal (they compile alike)."""
        return isinstance(other, RuleMatcher) and self._rules == other._rules

    def __hash__(self) -> int:
        return hash(frozenset(self._rules.items()))

    def view_groups(
        self, explicit: tuple[str, ...], context: Mapping[str, object], now: datetime
    ) -> tuple[str, ...]:
        """The groups of a request's view, in the order their overrides apply (later wins):
        the rule groups `context` matches, in name order, then the `explicit` groups of the
        unit in join order (a group both joined and matched counts as joined)."""
        if not self._groups:
            return explicit
        return self.view_groups_of(explicit, self.truth(context, now))

    def view_groups_of(self, explicit: tuple[str, ...], truth: int) -> tuple[str, ...]:
        """`view_groups` of a request whose context has `truth` (`truth`)."""
        matched = self.explain_truth(truth).groups
        if not explicit or not matched:
            return matched or explicit
        return tuple(name for name in matched if name not in explicit) + explicit

    def groups(self, context: Mapping[str, object], now: datetime) -> tuple[str, ...]:
        """The rule groups whose rule `context` matches, in name order; `now` (aware) is
        ``currentTime`` when the context has none. Attributes that are not a string, a
        number (integers within 64 bits) or a boolean count as missing."""
        return self.explain(context, now).groups

    def explain(self, context: Mapping[str, object], now: datetime) -> RuleMatch:
        """`groups`, with the constraint set that matched in each."""
        return self.explain_truth(self.truth(context, now))

    def explain_truth(self, truth: int) -> RuleMatch:
        """`explain` of a context whose `truth` is given."""
        # Requests fall into few distinct truths (which predicates hold): their matches are kept.
        found = self._matches.get(truth)
        if found is None:
            found = self._match(truth)
            if len(self._matches) >= KNOWN_TRUTHS:
                self._matches.clear()
            self._matches[truth] = found
        return found

    def truth(self, context: Mapping[str, object], now: datetime) -> int:
        """Which distinct predicates `context` satisfies, as bits (see the module
        docstring): requests with equal truths match the same groups (`view_groups_of`)."""
        truth = 0
        get = context.get
        # Attribute values repeat (countries, plans, versions): their bits are kept. Text is
        # its own key (one lookup); other types go with their type (True, 1 and 1.0 are equal
        # keys) in `_other`, as do missing attributes.
        for name, known, tests in self._attributes:
            value = get(name)
            if value.__class__ is str:
                bits = known.get(value)
                if bits is None:
                    bits = _evaluate(tests, value)
                    if len(value) <= KNOWN_LENGTH:  # a client's long unique values: not kept
                        if len(known) >= KNOWN_VALUES:
                            known.clear()
                        known[value] = bits
                truth |= bits
            elif value.__class__ is int and (bits := known.get((int, value))) is not None:
                truth |= bits  # a number seen before (numbers are kept with their type)
            else:
                truth |= _other(context, name, tests, value, now)
        return truth

    def _match(self, truth: int) -> RuleMatch:
        names: list[str] = []
        sets: list[int] = []
        # Rows come in group-name order, then set order: a group's first match is its first row.
        for name, position, must, must_not in self._rows:
            if truth & must == must and not truth & must_not and (not names or names[-1] != name):
                names.append(name)
                sets.append(position)
        return RuleMatch(tuple(names), tuple(sets))


def _other(
    context: Mapping[str, object], name: str, tests: _Tests, value: object, now: datetime
) -> int:
    """`RuleMatcher.truth`'s bits of an attribute that is not exactly text: missing, the
    clock, a number, a boolean, a subclass, or a type rules do not read (missing)."""
    if value.__class__ is int and -_INT64 <= value < _UINT64_END:
        read: Attribute = value
    elif value is None and name == CURRENT_TIME and tests.clock is not None:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return tests.clock.bits(aware, tests)
    else:
        unusual = _unusual(context, name, value, now)
        if unusual is None:
            return tests.when_missing
        read = unusual
    if isinstance(read, datetime):  # the clock: it does not repeat, nothing is kept
        return _evaluate(tests, read)
    key = read if read.__class__ is str else (read.__class__, read)
    known = tests.known
    bits = known.get(key)
    if bits is None:
        bits = _evaluate(tests, read)
        if not isinstance(read, str) or len(read) <= KNOWN_LENGTH:
            if len(known) >= KNOWN_VALUES:
                known.clear()
            known[key] = bits
    return bits


def _evaluate(attribute: _Tests, value: Attribute) -> int:
    """The bits of the attribute's predicates that hold for `value`."""
    bits = 0
    for reader, tests in attribute.reads:
        operand = reader(value)
        if operand is not None:
            for bit, test in tests:
                if test(operand):
                    bits |= bit
    for patterns, pattern_bits in attribute.patterns:
        for position in patterns.matching(text_of(value)):
            bits |= pattern_bits[position]
    return bits


_PLAIN = frozenset({str, float, bool})
"""Attribute types used as they come; anything else goes through `_unusual`."""


def _unusual(
    context: Mapping[str, object], name: str, value: object, now: datetime
) -> Attribute | None:
    """An attribute that is missing, an integer, or of a type rules do not read (None)."""
    if value is None and name == _USER_ID:
        value = context.get(_TARGETING_KEY)
        if value.__class__ in _PLAIN:
            return value  # type: ignore[return-value]
    if value is None and name == CURRENT_TIME:
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    # Integers beyond 64 bits have no float and (past 4,300 digits) no text: missing.
    if isinstance(value, int) and -_INT64 <= value < _UINT64_END:
        return value
    if isinstance(value, str | float):  # subclasses
        return value
    return None


def _by_attribute(predicates: list[Predicate]) -> tuple[_Attribute, ...]:
    """Predicates grouped by attribute, then by reader, so each is read once per request."""
    when_missing: dict[str, int] = {}
    reads: dict[str, dict[Reader, list[tuple[int, _Test]]]] = {}
    patterns: dict[str, dict[bool, list[tuple[str, int]]]] = {}
    dates: dict[str, list[datetime] | None] = {}
    """attribute -> the dates of its predicates while all are DATE predicates, else None."""
    for index, predicate in enumerate(predicates):
        name, bit = predicate.attribute, 1 << index
        when_missing[name] = when_missing.get(name, 0) | (bit if predicate.when_missing else 0)
        found_dates = dates.setdefault(name, [])
        if found_dates is not None and predicate.date is not None:
            found_dates.append(predicate.date)
        else:
            dates[name] = None
        if predicate.pattern is not None:
            by_case = patterns.setdefault(name, {})
            by_case.setdefault(predicate.case_sensitive, []).append((predicate.pattern, bit))
        elif predicate.reader is not None and predicate.test is not None:
            by_reader = reads.setdefault(name, {})
            by_reader.setdefault(predicate.reader, []).append((bit, predicate.test))
    attributes = []
    for name, missing in when_missing.items():
        clock_dates = dates[name] if name == CURRENT_TIME else None
        known: dict[object, int] = {}
        tests = _Tests(
            tuple((reader, tuple(tests)) for reader, tests in reads.get(name, {}).items()),
            tuple(
                (PatternSet([text for text, _ in found], case), tuple(bit for _, bit in found))
                for case, found in patterns.get(name, {}).items()
            ),
            missing,
            known,
            None if clock_dates is None else _Clock(clock_dates),
        )
        attributes.append(_Attribute(name, known, tests))
    return tuple(attributes)
