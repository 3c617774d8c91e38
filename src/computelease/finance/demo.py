"""Demo leases and credit lines, modelled on the two deals in the article (DOMAIN.md):

* a direct lease (直租) like 金山云(庆阳) with 信达金融租赁, RMB 300M, on the demo's H100/H800 servers;
* a sale-and-leaseback (售后回租) like 青云科技 with 浙江浙银金融租赁, RMB 29M over 24 months, on H20s.

The amounts and the 24-month term come from the article; rates, fees, frequency and start dates are
assumptions, labelled below. Dates are placed relative to today so that the demo always shows rents
paid (one of them late, with its penalty) and exactly one instalment overdue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.auth.core import SYSTEM
from computelease.finance import service
from computelease.finance.core import LeaseKind, add_months, penalty_interest
from computelease.finance.models import Lease
from computelease.finance.schemas import CreditLineIn, LeaseIn, PaymentIn, TermsIn
from computelease.fleet.core import NodeState
from computelease.fleet.models import Node

UNUSABLE = (NodeState.sold, NodeState.retired)


def _nodes(session: Session, world: Any) -> list[Node]:
    fleet = world.extra.get("fleet") or {}
    nodes = list(fleet.get("nodes") or [])
    if not nodes:
        # Seeded without the fleet's world entry (another order of seeders): take what the database has.
        nodes = list(session.scalars(select(Node).order_by(Node.id)))
    return [n for n in nodes if n.state not in UNUSABLE]


def _covering(nodes: Sequence[Node], skus: Sequence[str], amount: Decimal, taken: set[int]) -> list[int]:
    """Nodes of ``skus`` (in that order of preference) whose purchase cost first covers ``amount``."""
    chosen: list[int] = []
    total = Decimal(0)
    for sku in skus:
        for node in nodes:
            if total >= amount:
                return chosen
            if node.sku_id == sku and node.id not in taken:
                chosen.append(node.id)
                taken.add(node.id)
                total += node.purchase_cost
    return chosen


def _pay_due(
    session: Session, lease: Lease, today: date, *, late: dict[int, int], short: dict[int, Decimal]
) -> None:
    """Pays every rent due before today, in order: on the due date, or ``late[period]`` days after it with
    the penalty that ran meanwhile, or only ``short[period]`` of it (which leaves it overdue)."""
    for inst in lease.instalments:
        if inst.due_date >= today:
            break
        rent = inst.payment + inst.balloon
        if inst.period in short:
            paid_on = min(inst.due_date + timedelta(days=5), today)
            amount = (rent * short[inst.period]).quantize(Decimal("0.01"))
        elif inst.period in late:
            paid_on = min(inst.due_date + timedelta(days=late[inst.period]), today)
            amount = rent + penalty_interest(rent, inst.due_date, paid_on, lease.penalty_daily_rate)
        else:
            paid_on, amount = inst.due_date, rent
        if amount <= 0:
            continue
        service.record_payment(
            session,
            SYSTEM,
            lease.id,
            PaymentIn(paid_on=paid_on, amount=amount, reference=f"{lease.code}-{inst.period:02d}"),
            on_today=today,
        )


def seed(session: Session, world: Any) -> None:
    """Adds two leases and two credit lines; leaves ``world.extra["finance"] = {"leases": [...],
    "credit_lines": [...]}``. Needs ``world.lessors`` (two of them) and, for assets, the demo fleet."""
    today = service.today()
    xinda, zheyin = world.lessors[0], world.lessors[1]
    nodes = _nodes(session, world)
    taken: set[int] = set()

    # 金山云(庆阳) / 信达金融租赁, direct lease: RMB 300M (the framework's ceiling, from the article).
    # Assumed: 36 months, monthly rents in arrears, level (annuity), 5.2% a year nominal, 1% upfront fee,
    # RMB 100 purchase option; commencement four months and 20 days ago, after the demo fleet bought the
    # servers it finances (its H100s 300 and 210 days ago, its H800s 170), so four rents are already due.
    direct_amount = Decimal("300000000.00")
    direct = service.create_lease(
        session,
        SYSTEM,
        LeaseIn(
            code="XD-ZZ-001",
            kind=LeaseKind.direct,
            lessor_id=xinda.id,
            lessee="金山云(庆阳) (示例)",
            note="示例：参照金山云(庆阳)与信达金融租赁直租框架协议（不超过3亿元）；利率、期限为假设",
            terms=TermsIn(
                principal=str(direct_amount),
                annual_rate="0.052",
                months="36",
                start=add_months(today - timedelta(days=20), -4).isoformat(),
                fee_rate="0.01",
                purchase_option="100.00",
            ),
            # The H100 and H800 servers whose purchase cost the lease pays for (≈ RMB 2.2–2.3M each).
            node_ids=_covering(nodes, ("nvidia-hgx-h100-8gpu", "nvidia-hgx-h800-8gpu"), direct_amount, taken),
        ),
    )
    # The second rent came 3 days late, with its penalty; the others on their due dates.
    _pay_due(session, direct, today, late={2: 3}, short={})

    # 青云科技 / 浙江浙银金融租赁, sale-and-leaseback: RMB 29M, 24 months (both from the article).
    # Assumed: monthly rents in arrears, annuity, 6.8% a year (a smaller lessee pays more), 2% fee,
    # RMB 100 purchase option. The lessee bought the H20 servers (the demo fleet ordered them 100 days
    # ago) and sold them to the lessor for a little less than they cost; commencement two months and 12
    # days ago, so two rents are due.
    slb_amount = Decimal("29000000.00")
    slb = service.create_lease(
        session,
        SYSTEM,
        LeaseIn(
            code="ZY-HZ-001",
            kind=LeaseKind.sale_leaseback,
            lessor_id=zheyin.id,
            lessee="青云科技 (示例)",
            note="示例：参照青云科技与浙江浙银金融租赁售后回租（不超过2900万元，期限不超过2年）；利率为假设",
            terms=TermsIn(
                principal=str(slb_amount),
                annual_rate="0.068",
                months="24",
                start=add_months(today - timedelta(days=12), -2).isoformat(),
                fee_rate="0.02",
                purchase_option="100.00",
            ),
            node_ids=_covering(nodes, ("nvidia-hgx-h20-8gpu",), slb_amount, taken),
        ),
    )
    # The first rent was paid on time; the second (due about 12 days ago) only 40%, 5 days late: the one
    # overdue instalment.
    last_due = max((i.period for i in slb.instalments if i.due_date < today), default=0)
    _pay_due(session, slb, today, late={}, short={last_due: Decimal("0.4")})

    lines = [
        # Assumed: the direct-lease framework as a line drawn in full by the lease above.
        service.create_credit_line(
            session,
            SYSTEM,
            CreditLineIn(
                lessor_id=xinda.id,
                name="直租框架协议额度 (示例)",
                borrower="金山云(庆阳) (示例)",
                limit=direct_amount,
                drawn=direct_amount,
                rate=Decimal("0.052"),
                expires_on=add_months(direct.start_date, 36),
                note="框架协议签署于2024-09-25（文章）；到期日为假设",
            ),
        ),
        # Assumed: a working-capital line beside the sale-and-leaseback, partly drawn.
        service.create_credit_line(
            session,
            SYSTEM,
            CreditLineIn(
                lessor_id=zheyin.id,
                name="综合授信额度 (示例)",
                borrower="青云科技 (示例)",
                limit=Decimal("50000000.00"),
                drawn=slb_amount,
                rate=Decimal("0.068"),
                expires_on=add_months(today, 12),
                note="示例数据，额度与利率为假设",
            ),
        ),
    ]
    world.extra["finance"] = {"leases": [direct, slb], "credit_lines": lines}
