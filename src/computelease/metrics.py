"""Prometheus metrics. Domains add gauges by registering a collector with :func:`register`.

Each app has its own registry, so tests and several apps in one process never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from computelease import __version__

# A domain collector reads the database on each scrape and yields metric families.
DomainCollector = Callable[[Session], Iterable[Metric]]
_domain_collectors: list[DomainCollector] = []


def register(collector: DomainCollector) -> DomainCollector:
    if collector not in _domain_collectors:
        _domain_collectors.append(collector)
    return collector


class _DatabaseCollector(Collector):
    def __init__(self, db: Any) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        yield InfoMetricFamily("computelease", "computelease build", value={"version": __version__})
        up = GaugeMetricFamily("computelease_database_up", "1 when the database answers")
        ok = self.db.ping()
        up.add_metric([], 1.0 if ok else 0.0)
        yield up
        if not ok:
            return
        with self.db.transaction(actor="metrics") as session:
            for collector in _domain_collectors:
                yield from collector(session)


class Metrics:
    def __init__(self, db: Any) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "computelease_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "computelease_http_request_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_DatabaseCollector(db))

    def observe(self, method: str, route: str, status: int, started: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(time.perf_counter() - started)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@register
def _record_counts(session: Session) -> Iterable[Metric]:
    from sqlalchemy import func, select

    from computelease.contracts.models import Customer
    from computelease.finance.models import Lessor

    family = GaugeMetricFamily("computelease_records", "Business records by kind", labels=["kind"])
    for kind, model in (("customer", Customer), ("lessor", Lessor)):
        family.add_metric([kind], float(session.scalar(select(func.count()).select_from(model)) or 0))
    yield family
