"""The list of domains, and how their parts are found.

A domain folder may hold ``models.py`` (tables), ``endpoints.py`` (``router`` under /api/v1),
``pages.py`` (``router`` of web pages), ``cli.py`` (``app``, a Typer group named after the domain, or
``commands``: a list of (name, Typer) pairs). Adding a domain is adding its name here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType

DOMAINS = (
    "audit",
    "auth",
    "catalog",
    "fleet",
    "contracts",
    "allocation",
    "agent",
    "telemetry",
    "sla",
    "billing",
    "finance",
    "economics",
    "probe",
    "dashboard",
)


def parts(kind: str) -> Iterator[ModuleType]:
    """Each domain's ``kind`` module (``models``, ``endpoints``, ``pages``, ``cli``) that exists."""
    for domain in DOMAINS:
        name = f"computelease.{domain}.{kind}"
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # Only a missing part is skipped; a broken import inside a part must fail loudly.
            if exc.name not in (name, f"computelease.{domain}"):
                raise
