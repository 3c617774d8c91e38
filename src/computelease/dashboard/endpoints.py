"""Dashboard API: what each person sees first, as JSON."""

from __future__ import annotations

from fastapi import APIRouter

from computelease.auth.deps import Caller, Session
from computelease.dashboard import service
from computelease.dashboard.schemas import DashboardOut

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_model=DashboardOut, summary="Your dashboard: the figures you see first")
def get_dashboard(session: Session, caller: Caller) -> service.Summary:
    return service.summary(session, caller)
