"""In-process domain events: a lower domain announces what happened, a higher one reacts.

The flow of data runs catalog → fleet → contracts → allocation, so fleet may not import allocation;
yet a node turning faulty must heal its allocations. Fleet publishes, allocation subscribes. Handlers
run synchronously inside the publisher's transaction: what they write commits or rolls back with it.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

Handler = Callable[..., None]

# Modules that subscribe at import time. Imported before the first publish, so a handler is active
# wherever the publisher runs (app, CLI, a test that calls the service directly), not only where some
# import happened to load the subscriber.
SUBSCRIBERS = ("computelease.allocation.service",)

_handlers: dict[str, list[Handler]] = defaultdict(list)
_loaded = False


def subscribe(name: str, handler: Handler) -> Handler:
    if handler not in _handlers[name]:
        _handlers[name].append(handler)
    return handler


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in SUBSCRIBERS:
            importlib.import_module(module)


def publish(session: Session, name: str, **payload: Any) -> None:
    """Calls every handler of ``name`` with the session and the payload, in subscription order."""
    _load()
    for handler in list(_handlers.get(name, ())):
        handler(session, **payload)
