"""Every table, registered on ``Base.metadata`` so Alembic sees the whole schema.

Tables are found through :mod:`computelease.registry`: a domain's ``models.py`` is imported here.
"""

from computelease.db import Base
from computelease.registry import parts

MODULES = list(parts("models"))

__all__ = ["MODULES", "Base"]
