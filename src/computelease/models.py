"""Every table, imported in one place so Alembic and ``Base.metadata`` see the whole schema.

A new domain adds its ``models`` import here.
"""

from computelease.audit.models import AuditEntry
from computelease.auth.models import ApiToken, User
from computelease.contracts.models import Customer
from computelease.db import Base
from computelease.finance.models import Lessor

__all__ = ["ApiToken", "AuditEntry", "Base", "Customer", "Lessor", "User"]
