"""Demo scenarios: the four shipped examples, one run of the 莲花紫星-like one (so the scenario page has
figures to show), and the scenario of the demo's own fleet, contracts and leases."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy.orm import Session

from computelease.auth.core import SYSTEM
from computelease.economics import runs, service
from computelease.errors import AppError

DEMO_PATHS = 2_000


def seed(session: Session, world: Any = None) -> None:
    stored = {e.key: service.create_from_example(session, SYSTEM, e.key) for e in runs.examples()}
    service.run_scenario(session, SYSTEM, stored["lianhua_zixing"].id, paths=DEMO_PATHS, seed=1)
    # A demo fleet the engine cannot model (yet) leaves the examples there; the check fails before any write.
    with contextlib.suppress(AppError):
        service.create_live(session, SYSTEM)
