from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from computelease.auth.deps import Session
from computelease.contracts.models import Customer
from computelease.contracts.service import readable_customers
from computelease.web.pages import Viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    rows = session.scalars(readable_customers(viewer).order_by(Customer.name)).all()
    return render(request, "contracts/customers.html", customers=rows)
