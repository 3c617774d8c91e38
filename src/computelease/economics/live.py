"""A scenario built from the live database: "my fleet and contracts as they are today".

Only the signature and the mapping are settled here; the database access is wired later (issue 7's
service layer), so that this package stays free of SQL and the engine stays testable without a database.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from computelease.auth.core import Principal
    from computelease.economics.scenario import Scenario


def scenario_from_database(
    session: Session,
    principal: Principal,
    *,
    assumptions: Scenario,
    as_of: date,
    horizon_months: int | None = None,
) -> Scenario:
    """The scenario of what ``principal`` can read on ``as_of``, with ``assumptions`` for the rest.

    The mapping, one section at a time:

    * ``fleet``: the readable nodes in service or ordered, grouped by server SKU, site and acceptance
      month; ``unit_price`` from each node's recorded purchase cost (the catalog's reference price where
      none is recorded, with a warning), ``date`` from the purchase, ``in_service_months`` from acceptance.
    * ``sites``: each site's rack, power, PUE, O&M and insurance terms where stored, else the
      ``assumptions`` file's site of the same id.
    * ``contracts``: signed and active contracts with their capacity, price and SLA tiers; drafts in
      negotiation as ``pipeline`` with the win probability recorded on them.
    * ``funding``: each finance lease and credit line on those nodes as an instrument with its stored
      terms (the finance core rebuilds the same schedule), ``use`` listing them.
    * ``start``: the first day of ``as_of``'s month; ``horizon_months`` and the ``market``,
      ``accounting`` and ``risk`` sections come from ``assumptions``: the database holds facts, not
      forecasts.

    Reads start from each domain's ``readable_*(principal)`` query, so a lessor sees only its leases.
    """
    raise NotImplementedError(
        "building a scenario from the live database is not wired yet; export the fleet and contracts "
        "into a scenario file (docs/scenarios.md) and run `computelease scenario run FILE`"
    )
