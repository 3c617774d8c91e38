"""Demo customers, SLA policies and contracts (appended to computelease.demo.SEEDERS).

The flagship contract is modelled on the article's 莲花紫星 deal, "1545 PFLOPS (BF16) high-performance
compute service plus compute O&M for RMB 555M", scaled to one tenth for the ~250-node demo fleet:

    154.5 PFLOPS BF16 dense on H100 SXM (989.4 TFLOPS each) = 157 GPUs = 20 nodes of 8
    term 5 years, from the first of the month 20 months before the demo is seeded (2025-03-01 when
    written; the article states no term; 3–5 years is usual) = 60 months
    60 × (154.5 PFLOPS × ¥5,000 per PFLOPS-month + ¥152,500 O&M per month) = 60 × ¥925,000 = ¥55,500,000

i.e. 5.55亿元 / 10. The other prices follow DOMAIN.md's market facts (≈¥70k per 8×H100-class server-month
in China; ≈US$2.35 per H100-hour in March 2026).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from computelease.auth.core import Principal, Role
from computelease.contracts import service
from computelease.contracts.core import ContractStatus, add_months, uscc_check_char
from computelease.contracts.models import Contract, Segment
from computelease.contracts.schemas import ContractIn, CreditTierIn, CustomerIn, SlaPolicyIn, TransitionIn
from computelease.kit.time import utcnow

DEMO = Principal(role=Role.admin, actor="demo")


def _at(day: str) -> datetime:
    # Status changes at 09:00 Beijing time on the given day.
    return datetime.fromisoformat(f"{day}T01:00:00").replace(tzinfo=UTC)


def _contract(session: Session, history: list[tuple[ContractStatus, str, str]], **terms: Any) -> Contract:
    contract = service.create_contract(session, DEMO, ContractIn(**terms))
    for status, day, reason in history:
        service.transition(session, DEMO, contract.id, TransitionIn(to=status, at=_at(day), reason=reason))
    return contract


def demo_tax_id(n: int) -> str:
    """A made-up unified social credit code with a valid check character: "DEMX" in the organisation
    code marks it as demo data (no real code is issued with it)."""
    first17 = f"91110108DEMX{n:05d}"
    return first17 + uscc_check_char(first17)


def seed(session: Session, world: Any) -> None:
    """Three more customers (five with the two already in ``world.customers``), three SLA policies and
    five contracts: the scaled flagship, one in nodes, one in USD per GPU-hour, one ended, one draft."""
    model_maker, ai_cloud = world.customers[0], world.customers[1]
    more = [
        service.create(
            session,
            CustomerIn(name=name, segment=segment, credit_limit=Decimal(limit), currency=cur, tax_id=tax_id),
        )
        for name, segment, limit, cur, tax_id in (
            # A foreign buyer: no Chinese taxpayer id on its fapiao.
            ("Lumen Robotics Ltd. (demo)", Segment.enterprise, "3000000.00", "USD", None),
            ("东数西算枢纽算力中心 (示例)", Segment.government_center, "60000000.00", "CNY", demo_tax_id(3)),
            ("星河大学智能计算实验室 (示例)", Segment.research, "5000000.00", "CNY", demo_tax_id(4)),
        )
    ]
    enterprise, government, research = more
    world.customers.extend(more)

    def tiers(*pairs: tuple[str, str]) -> list[CreditTierIn]:
        return [CreditTierIn(below=Decimal(b), credit_pct=Decimal(c)) for b, c in pairs]

    standard = service.create_sla_policy(
        session,
        SlaPolicyIn(
            name="标准 99.9% (示例)",
            target_pct=Decimal("99.9"),
            credit_tiers=tiers(("99.9", "10"), ("99.0", "30"), ("95.0", "100")),
            cap_pct=Decimal("100"),
            maintenance_allowance_hours=Decimal("4"),
            notice_hours=Decimal("72"),
            description="Standard: 99.9% monthly availability, credits up to the month's fee.",
        ),
    )
    economy = service.create_sla_policy(
        session,
        SlaPolicyIn(
            name="经济 99.5% (示例)",
            target_pct=Decimal("99.5"),
            credit_tiers=tiers(("99.5", "5"), ("98.0", "15"), ("95.0", "50")),
            cap_pct=Decimal("50"),
            maintenance_allowance_hours=Decimal("8"),
            notice_hours=Decimal("48"),
            description="Economy: 99.5%, credits capped at half the month's fee.",
        ),
    )
    cloud_like = service.create_sla_policy(
        session,
        SlaPolicyIn(
            name="云厂商式 99.99% (示例)",
            target_pct=Decimal("99.99"),
            credit_tiers=tiers(("99.99", "10"), ("99.0", "30"), ("95.0", "100")),
            cap_pct=Decimal("100"),
            maintenance_allowance_hours=Decimal("0"),
            notice_hours=Decimal("72"),
            description="The tiers AWS EC2 publishes (DOMAIN.md).",
        ),
    )

    # Terms sit where they sat on 2026-11-27, shifted with the calendar: seeded on any day, the demo
    # has the same contracts in service, the same months behind them and one contract ended.
    this_month = utcnow().date().replace(day=1)
    flagship_start = add_months(this_month, -20)
    flagship = _contract(
        session,
        [
            (ContractStatus.signed, (flagship_start - timedelta(days=19)).isoformat(), "signed"),
            (ContractStatus.active, flagship_start.isoformat(), "capacity accepted by the customer"),
        ],
        customer_id=model_maker.id,
        name="154.5 PFLOPS BF16 + 运维, 5年 (莲花紫星合同的 1/10 示例)",
        capacity_unit="pflops",
        capacity=Decimal("154.5"),
        precision="bf16",
        accelerator_model="nvidia-h100-sxm",
        placement="same_fabric",
        start_date=flagship_start,
        end_date=add_months(flagship_start, 60) - timedelta(days=1),
        pricing="per_pflops_month",
        price=Decimal("5000.0000"),
        om_monthly_fee=Decimal("152500.00"),
        deposit=Decimal("2775000.00"),
        prepayment=Decimal("925000.00"),
        payment_terms_days=30,
        sla_policy_id=standard.id,
        notes=(
            "Modelled on the article's 莲花紫星 contract (1545 PFLOPS BF16 + O&M for RMB 555M), scaled to "
            "1/10 for the demo fleet: 154.5 PFLOPS = 157 H100 SXM = 20 nodes; 60 months × (154.5 × ¥5,000 + "
            "¥152,500 O&M) = ¥55.5M. The 5-year term is assumed; the article states none."
        ),
    )
    by_nodes_start = add_months(this_month, -17)
    by_nodes = _contract(
        session,
        [
            (ContractStatus.signed, (by_nodes_start - timedelta(days=20)).isoformat(), "signed"),
            (ContractStatus.active, by_nodes_start.isoformat(), "capacity handed over"),
        ],
        customer_id=ai_cloud.id,
        name="40 × 8-H800 节点, 3年 (示例)",
        capacity_unit="nodes",
        capacity=Decimal("40"),
        accelerator_model="nvidia-h800-sxm",
        placement="same_site",
        start_date=by_nodes_start,
        end_date=add_months(by_nodes_start, 36) - timedelta(days=1),
        pricing="monthly_fee",
        price=Decimal("2800000.00"),
        deposit=Decimal("5600000.00"),
        payment_terms_days=15,
        sla_policy_id=standard.id,
        notes="¥70,000 per 8-GPU server-month (DOMAIN.md: China broker note), 40 servers.",
    )
    usd_start = add_months(this_month, -10)
    usd_end = add_months(usd_start, 24) - timedelta(days=1)
    usd = _contract(
        session,
        [
            (ContractStatus.signed, (usd_start - timedelta(days=22)).isoformat(), "signed"),
            (ContractStatus.active, usd_start.isoformat(), "capacity handed over"),
        ],
        customer_id=enterprise.id,
        name="128 GPUs ≥80 GB, ≥900 TFLOPS BF16, per GPU-hour (demo)",
        capacity_unit="gpus",
        capacity=Decimal("128"),
        min_memory_gb=Decimal("80"),
        min_tflops=Decimal("900"),
        min_tflops_precision="bf16",
        placement="any",
        start_date=usd_start,
        end_date=usd_end,
        pricing="per_gpu_hour",
        price=Decimal("2.3500"),
        payment_terms_days=30,
        currency="USD",
        timezone="UTC",
        sla_policy_id=cloud_like.id,
        notes="US$2.35 per GPU-hour, the H100 market rate of March 2026 (DOMAIN.md); any H100-class GPU.",
    )
    ended_start = add_months(this_month, -26)
    ended = _contract(
        session,
        [
            (ContractStatus.signed, (ended_start - timedelta(days=12)).isoformat(), "signed"),
            (ContractStatus.active, ended_start.isoformat(), "capacity handed over"),
            (ContractStatus.ended, add_months(ended_start, 12).isoformat(), "term completed"),
        ],
        customer_id=research.id,
        name="32 × H20 推理卡, 1年 (示例, 已结束)",
        capacity_unit="gpus",
        capacity=Decimal("32"),
        accelerator_model="nvidia-h20",
        placement="same_site",
        start_date=ended_start,
        end_date=add_months(ended_start, 12) - timedelta(days=1),
        pricing="monthly_fee",
        price=Decimal("120000.00"),
        om_monthly_fee=Decimal("8000.00"),
        payment_terms_days=60,
        sla_policy_id=economy.id,
    )
    draft = _contract(
        session,
        [],
        customer_id=government.id,
        name="12 × 昇腾 910B 节点, 3年 (示例, 草稿)",
        capacity_unit="nodes",
        capacity=Decimal("12"),
        accelerator_model="huawei-ascend-910b",
        placement="same_fabric",
        start_date=add_months(this_month, 2),
        end_date=add_months(this_month, 38) - timedelta(days=1),
        pricing="monthly_fee",
        price=Decimal("540000.00"),
        om_monthly_fee=Decimal("36000.00"),
        deposit=Decimal("1080000.00"),
        payment_terms_days=45,
        sla_policy_id=economy.id,
        notes="Sold in nodes: sources disagree on the 910B's FP16 figure (256–376 TFLOPS), so no PFLOPS.",
    )
    world.extra["contracts"] = {
        "customers": list(world.customers),
        "sla_policies": {"standard": standard, "economy": economy, "cloud_like": cloud_like},
        "contracts": {"flagship": flagship, "by_nodes": by_nodes, "usd": usd, "ended": ended, "draft": draft},
    }
