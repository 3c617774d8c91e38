"""Column types and the transaction boundary, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, type_coerce

from computelease.contracts.models import Customer, Segment
from computelease.db import Database, Exact


class TestExactMoney:
    def test_round_trip_is_exact(self, db: Database) -> None:
        amounts = ["0.01", "0.10", "123456789012345.67", "555000000.00", "-3.33"]
        with db.transaction("test") as s:
            for i, a in enumerate(amounts):
                s.add(Customer(name=f"c{i}", segment=Segment.research, credit_limit=Decimal(a)))
        with db.transaction("test") as s:
            got = [c.credit_limit for c in s.scalars(select(Customer).order_by(Customer.name))]
        assert got == [Decimal(a) for a in amounts]
        assert all(isinstance(g, Decimal) for g in got)

    def test_sum_in_sql_is_exact(self, db: Database) -> None:
        # 0.1 + 0.2 in binary floats is 0.30000000000000004; ten thousand of them drift visibly.
        with db.transaction("test") as s:
            for i in range(200):
                s.add(Customer(name=f"c{i}", segment=Segment.research, credit_limit=Decimal("0.10")))
        with db.transaction("test") as s:
            total = s.scalar(select(type_coerce(func.sum(Customer.credit_limit), Exact(2))))
        assert total == Decimal("20.00")

    def test_float_and_excess_precision_are_refused(self, db: Database) -> None:
        for bad, err in ((0.1, TypeError), (Decimal("0.001"), ValueError)):
            with pytest.raises(Exception) as info, db.transaction("test") as s:
                s.add(Customer(name="bad", segment=Segment.research, credit_limit=bad))
                s.flush()
            assert isinstance(info.value, err) or isinstance(info.value.__cause__, err)


class TestTime:
    def test_datetimes_come_back_in_utc(self, db: Database) -> None:
        shanghai = timezone(timedelta(hours=8))
        with db.transaction("test") as s:
            c = Customer(name="t", segment=Segment.research)
            c.created_at = datetime(2026, 10, 31, 23, 30, tzinfo=shanghai)
            s.add(c)
        with db.transaction("test") as s:
            got = s.scalar(select(Customer.created_at))
        assert got == datetime(2026, 10, 31, 15, 30, tzinfo=UTC)
        assert got.utcoffset() == timedelta(0)

    def test_naive_datetimes_are_refused(self, db: Database) -> None:
        with pytest.raises(Exception, match="time zone"), db.transaction("test") as s:
            c = Customer(name="t", segment=Segment.research)
            c.created_at = datetime(2026, 1, 1)
            s.add(c)
            s.flush()


class TestTransaction:
    def test_error_rolls_back_everything(self, db: Database) -> None:
        with pytest.raises(RuntimeError), db.transaction("test") as s:
            s.add(Customer(name="half", segment=Segment.research))
            s.flush()
            raise RuntimeError("boom")
        with db.transaction("test") as s:
            assert s.scalar(select(func.count()).select_from(Customer)) == 0

    def test_success_commits(self, db: Database) -> None:
        with db.transaction("test") as s:
            s.add(Customer(name="kept", segment=Segment.research))
        with db.transaction("test") as s:
            assert s.scalar(select(Customer.name)) == "kept"
