from decimal import Decimal

import pytest

from bot.domain import (
    DEFAULT_MINOR_UNITS,
    TRANSITIONS,
    Money,
    Status,
    allocate,
    is_currency,
    minor_units,
    parse_amount,
    stored_minor_units,
)


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("25", "GBP", Decimal("25.00")),
        (" 25.5 ", "GBP", Decimal("25.50")),
        ("1,250.00", "USD", Decimal("1250.00")),
        ("£30", "GBP", Decimal("30.00")),
        ("40 eur", "EUR", Decimal("40.00")),
        (".5", "USD", Decimal("0.50")),
        ("1000", "JPY", Decimal("1000")),
        ("25", "UGX", Decimal("25")),
        ("1.234", "BHD", Decimal("1.234")),
        ("12.3456", "CLF", Decimal("12.3456")),
    ],
)
def test_parse_amount_accepts_what_people_type(text: str, currency: str, expected: Decimal) -> None:
    assert parse_amount(text, currency) == expected


@pytest.mark.parametrize(
    ("text", "currency", "message"),
    [
        ("", "GBP", "Enter an amount"),
        ("ten", "GBP", "not a number"),
        ("0", "GBP", "more than zero"),
        ("0.00", "GBP", "more than zero"),
        ("-5", "GBP", "not a number"),
        ("25.005", "GBP", "at most 2 decimal places"),
        ("10.5", "JPY", "at most 0 decimal places"),
        # Every ISO 4217 currency's own minor units, not two decimals for all but a few.
        ("25.50", "UGX", "UGX amounts have at most 0 decimal places: enter a whole number"),
        ("25.5", "KRW", "at most 0 decimal places"),
        ("1.2345", "BHD", "at most 3 decimal places"),
        ("$25", "GBP", "in GBP, not USD"),
        ("25 EUR", "GBP", "in GBP, not EUR"),
        ("NaN", "GBP", "not a number"),
        ("Infinity", "GBP", "not a number"),
        ("1e3", "GBP", "not a number"),
        ("1,25", "GBP", "not a number"),
    ],
)
def test_parse_amount_refuses_with_a_clear_message(text: str, currency: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_amount(text, currency)


def test_money_prints_with_the_currency_minor_units() -> None:
    assert str(Money(amount=Decimal("1250.5"), currency="GBP")) == "1,250.50 GBP"
    assert str(Money(amount=Decimal(1000), currency="JPY")) == "1,000 JPY"
    assert str(Money(amount=Decimal(25000), currency="UGX")) == "25,000 UGX"


def test_money_refuses_a_non_iso_currency() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        Money(amount=Decimal(1), currency="pounds")


@pytest.mark.parametrize("code", ["USS", "ABC", "usd", "GBPX", ""])
def test_money_refuses_a_code_that_is_not_an_iso_4217_currency(code: str) -> None:
    assert not is_currency(code)
    with pytest.raises(ValueError, match=f"{code!r} is not an ISO 4217 currency code"):
        Money(amount=Decimal(1), currency=code)


@pytest.mark.parametrize("code", ["XAU", "XDR", "XTS", "XXX"])
def test_money_refuses_iso_codes_without_minor_units(code: str) -> None:
    """Gold, special drawing rights and the test codes are in ISO 4217, but with no minor
    units: nothing can be priced or rounded in them."""
    assert not is_currency(code)
    with pytest.raises(ValueError, match="without minor units"):
        Money(amount=Decimal(1), currency=code)


@pytest.mark.parametrize(
    ("code", "places"), [("USD", 2), ("UGX", 0), ("ISK", 0), ("KWD", 3), ("TND", 3), ("CLF", 4)]
)
def test_minor_units_come_from_the_iso_4217_table(code: str, places: int) -> None:
    assert is_currency(code)
    assert minor_units(code) == places


def test_settled_statuses_have_no_way_out_but_a_retry_and_every_target_is_a_status() -> None:
    settled = {s for s in Status if s.is_settled}
    assert settled == {
        Status.FULFILLED,
        Status.REJECTED,
        Status.FAILED,
        Status.RESOLVED,
        Status.CANCELLED,
        Status.EXPIRED,
    }
    assert {s for s in settled if TRANSITIONS[s]} == {Status.FAILED}
    assert TRANSITIONS[Status.FAILED] == {Status.APPROVED}
    assert set(TRANSITIONS) == set(Status)


@pytest.mark.parametrize(
    ("total", "currency", "weights", "expected"),
    [
        ("175.00", "USD", ["50", "25", "100"], ["50.00", "25.00", "100.00"]),
        ("10.00", "GBP", ["1", "1", "1"], ["3.33", "3.33", "3.34"]),
        ("100", "JPY", ["1", "2"], ["33", "67"]),
        ("9.99", "EUR", ["40"], ["9.99"]),
    ],
)
def test_allocate_splits_a_charge_exactly_in_minor_units(
    total: str, currency: str, weights: list[str], expected: list[str]
) -> None:
    charge = Money(amount=Decimal(total), currency=currency)
    shares = allocate(charge, [Decimal(w) for w in weights])
    assert [s.amount for s in shares] == [Decimal(e) for e in expected]
    assert sum(s.amount for s in shares) == Decimal(total)
    assert {s.currency for s in shares} == {currency}


def test_a_stored_amount_loads_and_prints_even_if_its_code_was_withdrawn_since() -> None:
    """HRK was ISO 4217 money until 2023: stored amounts in it are read, with two places."""
    assert not is_currency("HRK")
    assert stored_minor_units("HRK") == DEFAULT_MINOR_UNITS == 2
    assert stored_minor_units("JPY") == 0
    kuna = Money.stored(Decimal("1250.5"), "HRK")
    assert kuna.currency == "HRK" and str(kuna) == "1,250.50 HRK"
    assert [s.amount for s in allocate(kuna, [Decimal(1), Decimal(2)])] == [
        Decimal("416.83"),
        Decimal("833.67"),
    ]
    assert str(Money.stored(Decimal(1250), "JPY")) == "1,250 JPY"


@pytest.mark.parametrize("code", ["hrk", "HR", "", "12X"])
def test_a_stored_amount_with_a_malformed_code_is_refused(code: str) -> None:
    with pytest.raises(ValueError, match="not a currency code"):
        Money.stored(Decimal(1), code)


def test_input_stays_strict_about_withdrawn_codes() -> None:
    with pytest.raises(ValueError, match="'HRK' is not an ISO 4217 currency code"):
        Money(amount=Decimal(1), currency="HRK")
    with pytest.raises(ValueError, match="'HRK' is not an ISO 4217 currency code"):
        parse_amount("25", "HRK")
