"""Clocks: the real one, and a simulated one that tests and `computelease simulate` drive by hand."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Protocol

from computelease.kit.time import as_utc, utcnow


class Clock(Protocol):
    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class SimClock:
    """Time that moves only when told to: sleeping advances it at once, so days pass in milliseconds."""

    def __init__(self, start: datetime) -> None:
        self._start = as_utc(start)
        self._now = self._start

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return (self._now - self._start).total_seconds()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        when = as_utc(when)
        if when < self._now:
            raise ValueError(f"a simulated clock does not go back ({when} < {self._now})")
        self._now = when
