"""A large dense subject index is backed by transparent huge pages where Linux offers them
(flaggery.engine.huge_pages), with its contents unchanged; small arrays are left alone."""

from __future__ import annotations

import sys
from array import array
from pathlib import Path

import pytest

from flaggery.engine.huge_pages import HUGE_PAGE_BYTES, MIN_BYTES, prefer_huge_pages
from flaggery.engine.subject_index import SubjectIndex

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def thp_offered() -> bool:
    """Linux with transparent huge pages on request ("[always]" or "[madvise]")."""
    return sys.platform == "linux" and THP.exists() and "[never]" not in THP.read_text()


def huge_bytes_under(address: int, size: int) -> int:
    """AnonHugePages (bytes) of the mappings overlapping [address, address + size)."""
    total, overlaps = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(part, 16) for part in head.split("-"))
            overlaps = start < address + size and address < end
        elif overlaps and head == "AnonHugePages:":
            total += int(line.split()[1]) * 1024
    return total


def test_a_small_array_is_left_alone() -> None:
    assert not prefer_huge_pages(array("H", [1]) * (MIN_BYTES // 2 - 1), now=True)


@pytest.mark.skipif(not thp_offered(), reason="no transparent huge pages on this system")
def test_a_ten_million_subject_index_sits_on_huge_pages_with_its_slots_intact() -> None:
    count = 10_000_000
    slots = array("H", range(200)) * (count // 200)
    expected = slots[::9973]
    index = SubjectIndex.build(array("q", range(count)), slots, array("q", [1]) * count)
    address, length = index.dense_slots.buffer_info()
    huge = huge_bytes_under(address, length * 2)
    # Every whole 2 MiB page inside the 20 MB buffer: at least 8 of its 9 or 10.
    assert huge >= (length * 2 // HUGE_PAGE_BYTES - 1) * HUGE_PAGE_BYTES
    assert index.dense_slots[::9973] == expected
    assert index.entry(count - 1) == (slots[-1], 1)
