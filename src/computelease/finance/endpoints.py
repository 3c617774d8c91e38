"""/api/v1 for lessors, leases (with schedules, assets, payments) and credit lines.

Reads are scoped by ``readable_*``; every write is for staff: a lessor watches its leases, the operator
records them. The quote is stateless maths, open to staff and lessors.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from computelease.auth.core import Principal, Role
from computelease.auth.deps import Caller, Session, Staff, require
from computelease.finance import service
from computelease.finance.models import CreditLine, LeaseStatus, Lessor
from computelease.finance.schemas import (
    AssetIn,
    AssetOut,
    CreditLineIn,
    CreditLineOut,
    CreditLinePatch,
    InstalmentOut,
    LeaseDetail,
    LeaseIn,
    LeaseOut,
    LeasePatch,
    LessorIn,
    LessorOut,
    PaymentIn,
    PaymentOut,
    TerminationOut,
    TermsIn,
)
from computelease.kit.pagination import Page, Paging, paginate

Quoter = Annotated[Principal, require(Role.admin, Role.operator, Role.lessor)]
AsOf = Annotated[date | None, Query(description="the date to judge instalments on (default today)")]

lessors = APIRouter(prefix="/lessors", tags=["lessors"])
leases = APIRouter(prefix="/leases", tags=["leases"])
credit_lines = APIRouter(prefix="/credit-lines", tags=["credit lines"])


# -------------------------------------------------------------------------------------- lessors


@lessors.get("", response_model=Page[LessorOut], summary="Lessors you may see")
def list_lessors(session: Session, caller: Caller, paging: Paging) -> Page[LessorOut]:
    items, total = paginate(session, service.readable_lessors(caller).order_by(Lessor.name), paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@lessors.post("", response_model=LessorOut, status_code=status.HTTP_201_CREATED)
def create_lessor(session: Session, caller: Staff, data: LessorIn) -> LessorOut:
    return service.create(session, data)


@lessors.get("/{lessor_id}", response_model=LessorOut)
def get_lessor(session: Session, caller: Caller, lessor_id: int) -> LessorOut:
    return service.get(session, caller, lessor_id)


# --------------------------------------------------------------------------------------- leases


@leases.post(
    "/quote",
    summary="Rent schedule, VAT and returns for terms (nothing is stored)",
    responses={400: {"description": "a bad term; the problem's `term` names it"}},
)
def quote(caller: Quoter, data: TermsIn) -> dict[str, Any]:
    return service.quote(data)


@leases.get("", response_model=Page[LeaseOut], summary="Leases you may see, with their arrears")
def list_leases(
    session: Session,
    caller: Caller,
    paging: Paging,
    as_of: AsOf = None,
    lease_status: Annotated[LeaseStatus | None, Query(alias="status")] = None,
    lessor_id: int | None = None,
) -> Page[LeaseOut]:
    stmt = service.list_leases(caller, status=lease_status, lessor_id=lessor_id)
    items, total = paginate(session, stmt, paging)
    return Page(
        items=[service.present_lease(x, as_of) for x in items],
        total=total,
        limit=paging.limit,
        offset=paging.offset,
    )


@leases.post("", response_model=LeaseDetail, status_code=status.HTTP_201_CREATED)
def create_lease(session: Session, caller: Staff, data: LeaseIn) -> LeaseDetail:
    return service.present_lease_detail(service.create_lease(session, caller, data))


@leases.get("/{lease_id}", response_model=LeaseDetail)
def get_lease(session: Session, caller: Caller, lease_id: int, as_of: AsOf = None) -> LeaseDetail:
    return service.present_lease_detail(service.get_lease(session, caller, lease_id), as_of)


@leases.patch("/{lease_id}", response_model=LeaseDetail)
def update_lease(session: Session, caller: Staff, lease_id: int, patch: LeasePatch) -> LeaseDetail:
    return service.present_lease_detail(service.update_lease(session, caller, lease_id, patch))


@leases.delete("/{lease_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_lease(session: Session, caller: Staff, lease_id: int) -> Response:
    service.delete_lease(session, caller, lease_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@leases.get("/{lease_id}/instalments", response_model=list[InstalmentOut])
def list_instalments(
    session: Session, caller: Caller, lease_id: int, as_of: AsOf = None
) -> list[InstalmentOut]:
    lease = service.get_lease(session, caller, lease_id)
    return service.present_instalments(lease, service.position(lease, as_of))


@leases.get("/{lease_id}/assets", response_model=list[AssetOut])
def list_assets(session: Session, caller: Caller, lease_id: int) -> list[AssetOut]:
    return service.present_assets(service.get_lease(session, caller, lease_id).assets)


@leases.post("/{lease_id}/assets", response_model=list[AssetOut], status_code=status.HTTP_201_CREATED)
def add_asset(session: Session, caller: Staff, lease_id: int, data: AssetIn) -> list[AssetOut]:
    asset = service.add_asset(session, caller, lease_id, data.node_id)
    return service.present_assets(asset.lease.assets)


@leases.delete("/{lease_id}/assets/{node_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_asset(session: Session, caller: Staff, lease_id: int, node_id: int) -> Response:
    service.remove_asset(session, caller, lease_id, node_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@leases.get("/{lease_id}/payments", response_model=list[PaymentOut])
def list_payments(session: Session, caller: Caller, lease_id: int) -> list[PaymentOut]:
    return [service.present_payment(p) for p in service.get_lease(session, caller, lease_id).payments]


@leases.post(
    "/{lease_id}/payments",
    response_model=PaymentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Record a payment; it is split across open instalments, penalty → interest → principal",
)
def record_payment(session: Session, caller: Staff, lease_id: int, data: PaymentIn) -> PaymentOut:
    return service.present_payment(service.record_payment(session, caller, lease_id, data))


@leases.get("/{lease_id}/termination-quote", response_model=TerminationOut)
def termination_quote(
    session: Session,
    caller: Caller,
    lease_id: int,
    on: Annotated[date | None, Query(description="the buyout date (default today)")] = None,
    fee_rate: Annotated[
        Decimal, Query(ge=0, lt=1, description="termination fee, a fraction of the outstanding principal")
    ] = Decimal("0"),
) -> TerminationOut:
    return service.termination(session, caller, lease_id, on, fee_rate=fee_rate)


# --------------------------------------------------------------------------------- credit lines


@credit_lines.get("", response_model=Page[CreditLineOut], summary="Credit lines you may see")
def list_credit_lines(session: Session, caller: Caller, paging: Paging) -> Page[CreditLineOut]:
    stmt = service.readable_credit_lines(caller).order_by(CreditLine.expires_on, CreditLine.id)
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@credit_lines.post("", response_model=CreditLineOut, status_code=status.HTTP_201_CREATED)
def create_credit_line(session: Session, caller: Staff, data: CreditLineIn) -> CreditLineOut:
    return service.create_credit_line(session, caller, data)


@credit_lines.get("/{credit_line_id}", response_model=CreditLineOut)
def get_credit_line(session: Session, caller: Caller, credit_line_id: int) -> CreditLineOut:
    return service.get_credit_line(session, caller, credit_line_id)


@credit_lines.patch("/{credit_line_id}", response_model=CreditLineOut, summary="Draw, repay or change a line")
def update_credit_line(
    session: Session, caller: Staff, credit_line_id: int, patch: CreditLinePatch
) -> CreditLineOut:
    return service.update_credit_line(session, caller, credit_line_id, patch)


router = APIRouter()
router.include_router(lessors)
router.include_router(leases)
router.include_router(credit_lines)
