"""Web pages for customers and contracts. Every read starts from the same scoped statements as the API
(``readable_customers``, ``readable_contracts``), so a customer's login sees only its own records; every
form POST carries the CSRF token and is for staff only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session as OrmSession

from computelease.auth.core import Principal
from computelease.auth.deps import Session
from computelease.catalog.core import PRECISIONS
from computelease.contracts import service
from computelease.contracts.core import CapacityUnit, ContractStatus, Placement, Pricing
from computelease.contracts.models import Contract, Customer, Segment, SlaPolicy
from computelease.contracts.schemas import (
    ContractIn,
    ContractOut,
    ContractPatch,
    CustomerIn,
    CustomerPatch,
    TransitionIn,
)
from computelease.errors import AppError, Forbidden
from computelease.money import CURRENCIES
from computelease.web import i18n
from computelease.web.download import csv_response
from computelease.web.labels import N_, labeller
from computelease.web.pages import Csrf, Viewer, locale_of, render

router = APIRouter(include_in_schema=False)

LABELS = {
    "draft": N_("Draft"),
    "signed": N_("Signed"),
    "active": N_("Active"),
    "ended": N_("Ended"),
    "terminated": N_("Terminated"),
    "pflops": N_("PFLOPS"),
    "gpus": N_("GPUs"),
    "nodes": N_("Nodes"),
    "same_fabric": N_("Same fabric"),
    "same_site": N_("Same site"),
    "any": N_("Anywhere"),
    "monthly_fee": N_("Fixed monthly fee"),
    "per_pflops_month": N_("Per PFLOPS-month"),
    "per_gpu_hour": N_("Per GPU-hour"),
}


clabel = labeller(
    LABELS, "The translated name of a contract code (status, unit, placement, pricing) or any other code."
)


def unit_price(amount: Decimal | None, currency: str = "CNY") -> str:
    """Unit prices keep their 4 decimals (US$2.3456), never rounded to the fen for display."""
    if amount is None:
        return "–"
    babel_locale = "zh_Hans_CN" if i18n.current.get() == "zh_CN" else "en_US"
    text = format_decimal(amount, format="#,##0.00##", locale=babel_locale)
    return f"{CURRENCIES.get(currency, currency + ' ')}{text}"


def capacity_text(c: ContractOut) -> str:
    """The capacity in the contract's own unit: 154.5 PFLOPS BF16, 128 GPUs, 16 nodes."""
    if c.capacity_unit is CapacityUnit.pflops:
        return f"{c.capacity.normalize():f} PFLOPS {str(c.precision).upper()}"
    n = int(c.capacity)
    return i18n.gettext("%(n)s GPUs") % {"n": n} if c.capacity_unit is CapacityUnit.gpus else _nodes(n)


def _nodes(n: int) -> str:
    return i18n.gettext("%(n)s nodes") % {"n": n}


def capacity_beside(c: ContractOut) -> str:
    """The other units, per compatible model: "157 GPUs · 20 nodes on nvidia-h100-sxm"."""
    parts = []
    for e in c.capacity_by_model:
        units = []
        if c.capacity_unit is not CapacityUnit.gpus:
            units.append(i18n.gettext("%(n)s GPUs") % {"n": e.gpus})
        if c.capacity_unit is not CapacityUnit.nodes and e.nodes is not None:
            units.append(_nodes(e.nodes))
        if c.capacity_unit is not CapacityUnit.pflops and e.pflops is not None:
            units.append(f"{e.pflops.quantize(Decimal('0.01')):f} PFLOPS {e.precision.upper()}")
        parts.append(f"{e.model}: " + " · ".join(units))
    return "; ".join(parts)


def num(value: Decimal | None) -> str:
    """A decimal as people write it: 60, 99.9, 154.5 (no exponent, no trailing zeros)."""
    return "–" if value is None else f"{Decimal(value).normalize():f}"


def _page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    i18n.current.set(locale_of(request))
    return render(
        request,
        template,
        status_code,
        clabel=clabel,
        unit_price=unit_price,
        num=num,
        capacity_text=capacity_text,
        capacity_beside=capacity_beside,
        **context,
    )


def _staff(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise Forbidden("only operators and administrators change customers and contracts")


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


FormData = Depends(_form)


def _problems(exc: ValidationError | AppError) -> list[str]:
    if isinstance(exc, AppError):
        return [exc.detail]
    return [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()]


def _clean(fields: dict[str, str]) -> dict[str, Any]:
    """Empty inputs mean "not given"."""
    return {k: v for k, v in fields.items() if v != ""}


def _csv(filename: str, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Response:
    return csv_response(filename, header, rows)


# ------------------------------------------------------------------------------------- customers


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    rows = session.scalars(service.readable_customers(viewer).order_by(Customer.name)).all()
    return _page(request, "contracts/customers.html", customers=rows)


@router.get("/customers.csv")
def customers_csv(session: Session, viewer: Viewer) -> Response:
    rows = session.scalars(service.readable_customers(viewer).order_by(Customer.id))
    return _csv(
        "customers.csv",
        ("id", "name", "segment", "credit_limit", "currency", "tax_id"),
        ((c.id, c.name, c.segment.value, c.credit_limit, c.currency, c.tax_id or "") for c in rows),
    )


def _customer_form(
    request: Request, *, customer: Customer | None, values: dict[str, Any], errors: Sequence[str], status: int
) -> HTMLResponse:
    return _page(
        request,
        "contracts/customer_form.html",
        status_code=status,
        customer=customer,
        values=values,
        errors=errors,
        segments=list(Segment),
        currencies=list(CURRENCIES),
    )


@router.get("/customers/new", response_class=HTMLResponse)
def customer_new(request: Request, viewer: Viewer) -> HTMLResponse:
    _staff(viewer)
    return _customer_form(request, customer=None, values={"currency": "CNY"}, errors=[], status=200)


@router.post("/customers/new", dependencies=[Csrf])
def customer_create(request: Request, session: Session, viewer: Viewer, fields: dict = FormData) -> Response:
    _staff(viewer)
    try:
        customer = service.create(session, CustomerIn.model_validate(_clean(fields)))
    except (ValidationError, AppError) as exc:
        session.rollback()
        return _customer_form(request, customer=None, values=fields, errors=_problems(exc), status=422)
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(request: Request, session: Session, viewer: Viewer, customer_id: int) -> HTMLResponse:
    customer = service.get(session, viewer, customer_id)
    contracts = session.scalars(service.list_contracts(viewer, customer_id=customer.id)).all()
    return _page(
        request,
        "contracts/customer.html",
        customer=customer,
        contracts=service.present_many(session, contracts),
    )


@router.get("/customers/{customer_id}/edit", response_class=HTMLResponse)
def customer_edit(request: Request, session: Session, viewer: Viewer, customer_id: int) -> HTMLResponse:
    _staff(viewer)
    customer = service.get(session, viewer, customer_id)
    values = {k: getattr(customer, k) for k in ("name", "segment", "credit_limit", "currency", "tax_id")}
    values["segment"] = customer.segment.value
    return _customer_form(request, customer=customer, values=values, errors=[], status=200)


@router.post("/customers/{customer_id}/edit", dependencies=[Csrf])
def customer_update(
    request: Request, session: Session, viewer: Viewer, customer_id: int, fields: dict = FormData
) -> Response:
    _staff(viewer)
    customer = service.get(session, viewer, customer_id)
    try:
        # An emptied field that may be cleared is cleared; any other empty field is "not given".
        data = _clean(fields) | {k: None for k in service.CLEARABLE if fields.get(k) == ""}
        service.update(session, viewer, customer_id, CustomerPatch.model_validate(data))
    except (ValidationError, AppError) as exc:
        session.rollback()
        customer = service.get(session, viewer, customer_id)
        return _customer_form(request, customer=customer, values=fields, errors=_problems(exc), status=422)
    return RedirectResponse(f"/customers/{customer.id}", status_code=303)


# ------------------------------------------------------------------------------------- contracts


def _status_filter(status: str | None) -> ContractStatus | None:
    return ContractStatus(status) if status in ContractStatus.__members__ else None


@router.get("/contracts", response_class=HTMLResponse)
def contracts_page(
    request: Request,
    session: Session,
    viewer: Viewer,
    status: str | None = None,
    customer_id: int | None = None,
) -> HTMLResponse:
    chosen = _status_filter(status)
    rows = session.scalars(service.list_contracts(viewer, status=chosen, customer_id=customer_id)).all()
    query = "&".join(
        f"{k}={v}"
        for k, v in (("status", chosen.value if chosen else None), ("customer_id", customer_id))
        if v
    )
    return _page(
        request,
        "contracts/contracts.html",
        contracts=service.present_many(session, rows),
        statuses=list(ContractStatus),
        status=chosen,
        csv_url="/contracts.csv" + (f"?{query}" if query else ""),
    )


CSV_COLUMNS = (
    "id", "name", "customer", "status", "capacity", "capacity_unit", "precision", "accelerator",
    "billable_gpus", "placement", "start_date", "end_date", "timezone", "pricing", "price",
    "om_monthly_fee", "deposit", "prepayment", "payment_terms_days", "currency", "total_value",
)  # fmt: skip


def _csv_row(c: Contract, shown: ContractOut) -> list[object]:
    accelerator = c.accelerator_model or " ".join(shown.compatible_models)
    return [
        c.id, c.name, c.customer.name, c.status.value, c.capacity, c.capacity_unit.value, c.precision,
        accelerator, c.billable_gpus, c.placement.value, c.start_date, c.end_date, c.timezone,
        c.pricing.value, c.price, c.om_monthly_fee, c.deposit, c.prepayment, c.payment_terms_days,
        c.currency, c.total_value,
    ]  # fmt: skip


@router.get("/contracts.csv")
def contracts_csv(
    session: Session, viewer: Viewer, status: str | None = None, customer_id: int | None = None
) -> Response:
    stmt = service.list_contracts(viewer, status=_status_filter(status), customer_id=customer_id)
    rows = session.scalars(stmt).all()
    return _csv("contracts.csv", CSV_COLUMNS, map(_csv_row, rows, service.present_many(session, rows)))


def _contract_form(
    request: Request,
    session: OrmSession,
    viewer: Principal,
    *,
    contract: Contract | None,
    values: dict[str, Any],
    errors: Sequence[str],
    status: int,
) -> HTMLResponse:
    return _page(
        request,
        "contracts/contract_form.html",
        status_code=status,
        contract=contract,
        terms_locked=contract is not None and contract.status is not ContractStatus.draft,
        values=values,
        errors=errors,
        customers=session.scalars(service.readable_customers(viewer).order_by(Customer.name)).all(),
        policies=session.scalars(service.readable_sla_policies(viewer).order_by(SlaPolicy.name)).all(),
        models=[a.id for a in service.catalog(session).accelerators],
        units=list(CapacityUnit),
        precisions=PRECISIONS,
        placements=list(Placement),
        pricings=list(Pricing),
        currencies=list(CURRENCIES),
    )


_DEFAULTS = {
    "capacity_unit": "gpus",
    "precision": "bf16",
    "min_tflops_precision": "bf16",
    "placement": "any",
    "pricing": "monthly_fee",
    "om_monthly_fee": "0.00",
    "deposit": "0.00",
    "prepayment": "0.00",
    "payment_terms_days": "30",
    "currency": "CNY",
    "timezone": "Asia/Shanghai",
}


def _contract_values(contract: Contract) -> dict[str, Any]:
    values = {}
    for key in ContractIn.model_fields:
        value = getattr(contract, key)
        values[key] = "" if value is None else getattr(value, "value", value)
    return values


def _contract_input(fields: dict[str, str]) -> dict[str, Any]:
    data = _clean(fields)
    if data.get("capacity_unit") != CapacityUnit.pflops.value:
        data.pop("precision", None)
    if "min_tflops" not in data:
        data.pop("min_tflops_precision", None)
    return data


@router.get("/contracts/new", response_class=HTMLResponse)
def contract_new(
    request: Request, session: Session, viewer: Viewer, customer_id: int | None = None
) -> HTMLResponse:
    _staff(viewer)
    values = {**_DEFAULTS, "customer_id": customer_id or ""}
    return _contract_form(request, session, viewer, contract=None, values=values, errors=[], status=200)


@router.post("/contracts/new", dependencies=[Csrf])
def contract_create(request: Request, session: Session, viewer: Viewer, fields: dict = FormData) -> Response:
    _staff(viewer)
    try:
        contract = service.create_contract(
            session, viewer, ContractIn.model_validate(_contract_input(fields))
        )
    except (ValidationError, AppError) as exc:
        session.rollback()
        return _contract_form(
            request, session, viewer, contract=None, values=fields, errors=_problems(exc), status=422
        )
    return RedirectResponse(f"/contracts/{contract.id}", status_code=303)


@router.get("/contracts/{contract_id}", response_class=HTMLResponse)
def contract_page(request: Request, session: Session, viewer: Viewer, contract_id: int) -> HTMLResponse:
    contract = service.get_contract(session, viewer, contract_id)
    i18n.current.set(locale_of(request))  # the chart's labels are made before the template renders
    return _page(
        request,
        "contracts/contract.html",
        c=service.present_detail(session, contract),
        transition_error=None,
        serving=_serving(session, viewer, contract.id),
        **_record(session, viewer, contract),
    )


def _record(session: Session, viewer: Principal, contract: Contract) -> dict[str, Any]:
    """What the contract has delivered and billed: capacity per day (chart), SLA per month, invoices.
    Imported here: sla and billing build on contracts, so contracts cannot import them at module level."""
    from computelease.billing import service as billing
    from computelease.billing.core import DocKind, InvoiceStatus
    from computelease.billing.models import Invoice
    from computelease.billing.pages import blabel
    from computelease.sla import service as sla

    # A draft promises nothing yet: no capacity is owed, so none is measured against it.
    served = contract.status is not ContractStatus.draft
    days = sla.daily(session, viewer, contract.id) if served else []
    invoices = list(
        session.scalars(
            billing.readable_invoices(viewer)
            .where(Invoice.contract_id == contract.id)
            .order_by(Invoice.period.desc(), Invoice.id.desc())
        )
    )
    issued = [i for i in invoices if i.status not in (InvoiceStatus.draft, InvoiceStatus.void)]
    return {
        "chart": _capacity_chart(contract, days) if days else None,
        "sla_months": sla.months(session, viewer, contract.id) if served else [],
        "invoices": [(i, billing.status_of(i)) for i in invoices],
        # Credit notes carry negative amounts: billed so far is what the customer owes in all.
        "billed": sum((i.gross for i in issued), Decimal(0)) if issued else None,
        "outstanding": sum((i.balance for i in issued if i.kind is DocKind.invoice), Decimal(0)),
        "blabel": blabel,
    }


def _capacity_chart(contract: Contract, days: Sequence[Any]) -> str:
    import plotly.graph_objects as go

    # In the contract's own unit: a PFLOPS contract sees PFLOPS (its GPUs at the contracted rate each).
    if contract.capacity_unit is CapacityUnit.pflops and contract.billable_pflops and contract.billable_gpus:
        scale = contract.billable_pflops / contract.billable_gpus
        unit = f"PFLOPS {str(contract.precision).upper()}"
    else:
        scale, unit = Decimal(1), i18n.gettext("GPUs")
    x = [d.day.isoformat() for d in days]

    def series(values: Iterable[Decimal]) -> list[float]:
        return [round(float(v * scale), 3) for v in values]

    fig = go.Figure(
        [
            go.Scatter(
                x=x,
                y=series(d.contracted_gpus for d in days),
                name=i18n.gettext("Contracted capacity"),
                mode="lines",
                line={"color": "#8fa3bf", "dash": "dot"},
            ),
            go.Scatter(
                x=x,
                y=series(d.delivered_gpus for d in days),
                name=i18n.gettext("Delivered capacity"),
                mode="lines",
                line={"color": "#2f6fde"},
            ),
        ],
        layout={
            "title": {
                "text": i18n.gettext("Contracted vs delivered, %(unit)s, daily average") % {"unit": unit}
            },
            "margin": {"l": 50, "r": 10, "t": 40, "b": 40},
            "height": 300,
            "yaxis": {"rangemode": "tozero"},
            "legend": {"orientation": "h"},
        },
    )
    return fig.to_json()


def _serving(session: Session, viewer: Principal, contract_id: int) -> list:
    # Imported here: allocation builds on contracts, so contracts cannot import it at module level.
    from computelease.allocation import service as allocation

    stmt = allocation.filter_allocations(allocation.readable_allocations(viewer), contract_id=contract_id)
    return list(session.scalars(stmt))


@router.get("/contracts/{contract_id}/edit", response_class=HTMLResponse)
def contract_edit(request: Request, session: Session, viewer: Viewer, contract_id: int) -> HTMLResponse:
    _staff(viewer)
    contract = service.get_contract(session, viewer, contract_id)
    return _contract_form(
        request, session, viewer, contract=contract, values=_contract_values(contract), errors=[], status=200
    )


@router.post("/contracts/{contract_id}/edit", dependencies=[Csrf])
def contract_update(
    request: Request, session: Session, viewer: Viewer, contract_id: int, fields: dict = FormData
) -> Response:
    _staff(viewer)
    contract = service.get_contract(session, viewer, contract_id)
    try:
        if contract.status is ContractStatus.draft:
            full: BaseModel = ContractIn.model_validate(_contract_input(fields))
            patch = ContractPatch.model_validate(full.model_dump())
        else:
            # Past draft the form shows the terms read-only; only the descriptive fields are sent.
            patch = ContractPatch.model_validate({k: v for k, v in fields.items() if k in ("name", "notes")})
        service.update_contract(session, viewer, contract_id, patch)
    except (ValidationError, AppError) as exc:
        session.rollback()
        contract = service.get_contract(session, viewer, contract_id)
        values = {**_contract_values(contract), **fields}
        return _contract_form(
            request, session, viewer, contract=contract, values=values, errors=_problems(exc), status=422
        )
    return RedirectResponse(f"/contracts/{contract_id}", status_code=303)


@router.post("/contracts/{contract_id}/transition", dependencies=[Csrf])
def contract_transition(
    request: Request, session: Session, viewer: Viewer, contract_id: int, fields: dict = FormData
) -> Response:
    _staff(viewer)
    try:
        service.transition(session, viewer, contract_id, TransitionIn.model_validate(_clean(fields)))
    except (ValidationError, AppError) as exc:
        session.rollback()
        contract = service.get_contract(session, viewer, contract_id)
        return _page(
            request,
            "contracts/contract.html",
            status_code=exc.status if isinstance(exc, AppError) else 422,
            c=service.present_detail(session, contract),
            transition_error="; ".join(_problems(exc)),
            serving=_serving(session, viewer, contract.id),
            **_record(session, viewer, contract),
        )
    return RedirectResponse(f"/contracts/{contract_id}", status_code=303)
