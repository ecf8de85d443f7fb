"""Parsers for what constraints compare: text, numbers, semantic versions, dates, addresses.

The same parsers read a constraint's values (once, when a rule is validated or compiled) and a
context attribute (once per request and attribute). Each returns ``None`` for text it cannot
read, which the operators treat as "does not match" (before ``inverted`` applies).
"""

from __future__ import annotations

import ipaddress
import math
import re
from bisect import bisect_right
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeAlias

__all__ = [
    "AddressRanges",
    "Attribute",
    "SemverKey",
    "address_of",
    "date_of",
    "number_of",
    "semver_of",
    "text_of",
]

Attribute: TypeAlias = str | bool | int | float | datetime
"""A context attribute as rules read it; ``datetime`` only for the caller's clock."""

# JSON-style decimals (a leading "+", "5." and ".5" allowed, as JavaScript's Number reads them);
# no "inf", "nan", hexadecimal or digit separators.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
# Semantic Versioning 2.0.0 (semver.org), strict: no "v", no leading zeros, no missing parts.
_SEMVER = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?",
    re.ASCII,
)
# RFC 3339 date-time with a mandatory offset ("Z" or +hh:mm).
_DATE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)

SemverKey: TypeAlias = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]
"""A version's precedence: compare keys with < and ==; build metadata is ignored."""


def text_of(value: Attribute) -> str:
    """A context attribute as text: booleans as ``true``/``false``, numbers as JavaScript
    prints them (``12``, ``12.5``), the caller's clock in RFC 3339 (``...Z``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def number_of(value: Attribute) -> float | None:
    """A finite number, from a number or from decimal text; ``None`` otherwise."""
    if isinstance(value, bool | datetime):
        return None
    if isinstance(value, str):
        if len(value) > 400 or not _NUMBER.fullmatch(value):
            return None
        value = float(value)
    number = float(value)
    return number if math.isfinite(number) else None


def semver_of(value: Attribute) -> SemverKey | None:
    """The precedence key of a strict semantic version (``1.2.3-rc.1+build``), else ``None``."""
    if not isinstance(value, str) or len(value) > 256:
        return None
    found = _SEMVER.fullmatch(value)
    if found is None:
        return None
    major, minor, patch, prerelease = found.groups()
    if prerelease is None:
        # A release outranks every pre-release of the same version.
        return int(major), int(minor), int(patch), 1, ()
    identifiers = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in prerelease.split(".")
    )
    return int(major), int(minor), int(patch), 0, identifiers


def date_of(value: Attribute) -> datetime | None:
    """An aware date-time from RFC 3339 text with an offset (or the caller's clock)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) > 64:
        return None
    found = _DATE.fullmatch(value)
    if found is None:
        return None
    day, time, fraction, offset = found.groups()
    # datetime keeps microseconds: finer fractions are cut, never rounded up past a boundary.
    micro = "." + (fraction + "00000")[:6] if fraction else ""
    zone = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{time}{micro}{zone}")
    except ValueError:
        return None


def address_of(value: Attribute) -> tuple[int, int] | None:
    """An IP address as ``(version, integer)``, else ``None``."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    if ":" not in value:
        return _ipv4(value)
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    return address.version, int(address)


def _ipv4(text: str) -> tuple[int, int] | None:
    """Dotted-quad IPv4 as ``ipaddress`` reads it (no leading zeros), ten times faster."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if (
            not (part.isascii() and part.isdigit())
            or len(part) > 3
            or (part[0] == "0" and part != "0")
        ):
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number << 8 | octet
    return 4, number


class AddressRanges:
    """IP networks (CIDR notation, or one address) merged into sorted ranges per IP version,
    so a lookup is a binary search whatever the number of networks."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, networks: Iterable[str]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in networks:
            network = network_of(text)
            if network is not None:
                spans[network.version].append(
                    (int(network.network_address), int(network.broadcast_address))
                )
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, ranges in spans.items():
            merged: list[list[int]] = []
            for start, end in sorted(ranges):
                if merged and start <= merged[-1][1] + 1:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            self._starts[version] = [start for start, _ in merged]
            self._ends[version] = [end for _, end in merged]

    def __bool__(self) -> bool:
        return any(self._starts.values())

    def __contains__(self, address: tuple[int, int]) -> bool:
        version, number = address
        starts = self._starts[version]
        index = bisect_right(starts, number) - 1
        return index >= 0 and number <= self._ends[version][index]


def network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """A network from CIDR notation or one address (host bits allowed), else ``None``."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
