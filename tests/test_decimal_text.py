"""flaggery.decimal_text: the one rule for whole numbers written by a client."""

from __future__ import annotations

import pytest

from flaggery.decimal_text import INT64_MAX, INT64_MIN, DecimalTextError, parse_decimal, percent


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("7", 7), ("007", 7), ("9223372036854775807", INT64_MAX), ("0" * 5000 + "5", 5)],
)
def test_ascii_digits_in_bounds_are_read(text: str, value: int) -> None:
    assert parse_decimal(text, "n") == value


@pytest.mark.parametrize(
    "text", ["", "²", "٣", "1_000", "+5", " 5", "5 ", "1e3", "1.0", "--5", "0x10"]
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(DecimalTextError, match=r"^count must be a whole number"):
        parse_decimal(text, "count")


def test_a_sign_only_where_the_field_may_be_negative() -> None:
    assert parse_decimal("-9223372036854775808", "id", low=INT64_MIN) == INT64_MIN
    with pytest.raises(DecimalTextError, match="optional leading '-'"):
        parse_decimal("--1", "id", low=INT64_MIN)
    for text in ("-5", "-0"):
        with pytest.raises(DecimalTextError, match="must be a whole number from 0 to"):
            parse_decimal(text, "page")


@pytest.mark.parametrize(
    "text", [str(INT64_MAX + 1), "9" * 5000, "1" + "0" * 100_000, "0" * 5000 + "1" * 20]
)
def test_out_of_64_bits_is_refused_without_reading_the_digits(text: str) -> None:
    with pytest.raises(
        DecimalTextError, match="must be a whole number from 0 to 9223372036854775807"
    ) as error:
        parse_decimal(text, "n")
    assert len(str(error.value)) < 200


def test_field_bounds_apply() -> None:
    assert parse_decimal("5", "n", low=1, high=5) == 5
    with pytest.raises(DecimalTextError, match="from 1 to 5, got '6'"):
        parse_decimal("6", "n", low=1, high=5)


@pytest.mark.parametrize(
    ("text", "value"), [("0", 0.0), ("12.5", 12.5), (".5", 0.5), ("100", 100.0)]
)
def test_percentages(text: str, value: float) -> None:
    assert percent(text) == value


@pytest.mark.parametrize("text", ["", "100.1", "-1", "nan", "inf", "1e1", "٣", "1_0", "²"])
def test_not_percentages(text: str) -> None:
    assert percent(text) is None
