"""Exact money: ``Decimal`` amounts, one rounding policy (to the fen, half-up).

Settled amounts never pass through ``float``. Rounding happens at line boundaries, through
:func:`to_fen`; intermediate arithmetic keeps full precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

FEN = Decimal("0.01")
CURRENCIES = {"CNY": "¥", "USD": "US$", "EUR": "€", "HKD": "HK$"}
# 28 significant digits (the default) loses fen on sums above 10^26; 34 leaves room for any real ledger.
CONTEXT = Context(prec=34, rounding=ROUND_HALF_UP)


def D(value: object) -> Decimal:
    """Parse an amount exactly. Floats are refused: they already lost the fen."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise TypeError("money must not come from a float; pass a str or int")
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


def to_fen(value: Decimal | int | str) -> Decimal:
    """Round half-up to the fen (0.01)."""
    with localcontext(CONTEXT):
        return D(value).quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str = "CNY"

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", D(self.amount))
        if self.currency not in CURRENCIES:
            raise ValueError(f"unknown currency {self.currency!r}; use one of {', '.join(CURRENCIES)}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def rounded(self) -> Money:
        return Money(to_fen(self.amount), self.currency)

    def __str__(self) -> str:
        return f"{CURRENCIES[self.currency]}{to_fen(self.amount):,}"
