"""How numbers look to people: exact money with its currency, percentages, 万元/亿元 for large sums."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_decimal

from computelease.money import CURRENCIES, to_fen


def _babel_locale(locale: str) -> str:
    return "zh_Hans_CN" if locale == "zh_CN" else "en_US"


def money(amount: Decimal | None, currency: str = "CNY", locale: str = "zh_CN") -> str:
    """Exact to the fen, thousands separated, with its currency symbol: ¥1,234,567.89."""
    if amount is None:
        return "–"
    value = to_fen(amount)
    text = format_decimal(abs(value), format="#,##0.00", locale=_babel_locale(locale))
    # The sign goes before the symbol, as finance staff write a credit: -¥7,000.00.
    return f"{'-' if value < 0 else ''}{CURRENCIES.get(currency, currency + ' ')}{text}"


def large(amount: Decimal | None, currency: str = "CNY", locale: str = "zh_CN") -> str:
    """Readable magnitude for headlines: 5.55亿元 in Chinese, ¥555.0M in English."""
    if amount is None:
        return "–"
    value = Decimal(amount)
    if locale == "zh_CN" and currency == "CNY":
        if abs(value) >= Decimal("1e8"):
            return f"{(value / Decimal('1e8')).quantize(Decimal('0.01'))}亿元"
        if abs(value) >= Decimal("1e4"):
            return f"{(value / Decimal('1e4')).quantize(Decimal('0.01'))}万元"
        return money(value, currency, locale)
    symbol = CURRENCIES.get(currency, currency + " ")
    for size, suffix in ((Decimal("1e9"), "B"), (Decimal("1e6"), "M"), (Decimal("1e3"), "k")):
        if abs(value) >= size:
            return f"{symbol}{(value / size).quantize(Decimal('0.1'))}{suffix}"
    return money(value, currency, locale)


def pct(ratio: float | Decimal | None, places: int = 1) -> str:
    """0.873 → 87.3%; availability uses places=3 (99.952%)."""
    if ratio is None:
        return "–"
    return f"{Decimal(str(ratio)) * 100:.{places}f}%"
