from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computelease.money import D, Money, to_fen


class TestToFen:
    @pytest.mark.parametrize(
        ("raw", "fen"),
        [("0.005", "0.01"), ("0.004", "0.00"), ("-0.005", "-0.01"), ("2.675", "2.68"), ("1e3", "1000.00")],
    )
    def test_half_up(self, raw: str, fen: str) -> None:
        assert to_fen(raw) == Decimal(fen)

    def test_large_amounts_keep_the_fen(self) -> None:
        # 10^20 yuan and one fen needs 23 significant digits; Python's default context has 28.
        assert to_fen("100000000000000000000.005") == Decimal("100000000000000000000.01")

    @given(st.decimals(min_value=-(10**12), max_value=10**12, places=6, allow_nan=False))
    def test_never_moves_more_than_half_a_fen(self, value: Decimal) -> None:
        assert abs(to_fen(value) - value) <= Decimal("0.005")


class TestParsing:
    def test_float_is_refused(self) -> None:
        with pytest.raises(TypeError, match="float"):
            D(0.1)

    def test_garbage_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a number"):
            D("twelve")


class TestMoney:
    def test_adding_different_currencies_fails(self) -> None:
        with pytest.raises(ValueError, match="CNY with USD"):
            Money(D("1"), "CNY") + Money(D("1"), "USD")

    def test_str_shows_symbol_and_fen(self) -> None:
        assert str(Money(D("555000000"), "CNY")) == "¥555,000,000.00"
        assert str(Money(D("1.005"), "USD")) == "US$1.01"

    def test_unknown_currency(self) -> None:
        with pytest.raises(ValueError, match="unknown currency"):
            Money(D("1"), "XYZ")
