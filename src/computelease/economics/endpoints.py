"""/api/v1 for stored scenarios and their runs (staff only), and the lessor's exposure of a lease.

A scenario is sent as its YAML text (``Content-Type: application/yaml`` or ``text/plain``), or as JSON:
``{"yaml": "..."}``, ``{"example": "lianhua_zixing"}``, or the scenario document itself as a JSON object.
A file that breaks the schema is a 422 problem whose ``problems`` list every ``"path: what is wrong"``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, Query, Response, status
from pydantic import ValidationError

from computelease.auth.deps import Caller, Session, Staff
from computelease.economics import runs, service
from computelease.economics.models import StoredScenario
from computelease.economics.scenario import ScenarioInvalid
from computelease.economics.schemas import (
    ExampleOut,
    ExposureOut,
    LiveIn,
    RunBrief,
    RunIn,
    RunOut,
    ScenarioDetail,
    ScenarioIn,
    ScenarioOut,
)
from computelease.kit.pagination import Page, Paging, paginate

router = APIRouter(tags=["scenarios"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": ScenarioIn.model_json_schema()},
        },
    }
}


def _detail(session: Session, row: StoredScenario) -> ScenarioDetail:
    runs_ = [RunBrief.model_validate(r) for r in service.list_runs_unchecked(session, row.id)]
    return ScenarioDetail(
        id=row.id,
        name=row.name,
        source=row.source,
        created_by=row.created_by,
        created_at=row.created_at,
        yaml=row.yaml,
        runs=runs_,
    )


def _upload(body: Any) -> ScenarioIn:
    if isinstance(body, bytes | bytearray):
        try:
            return ScenarioIn(yaml=bytes(body).decode("utf-8"))
        except UnicodeDecodeError:
            raise ScenarioInvalid(["the file is not UTF-8 text"]) from None
    if isinstance(body, str):
        return ScenarioIn(yaml=body)
    if isinstance(body, dict) and not ({"yaml", "example"} & set(body)):
        # The scenario document itself, sent as JSON: kept as YAML so it can be downloaded and edited.
        return ScenarioIn(yaml=yaml.safe_dump(body, allow_unicode=True, sort_keys=False))
    try:
        data = ScenarioIn.model_validate(body)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise ScenarioInvalid(problems) from None
    if (data.yaml is None) == (data.example is None):
        raise ScenarioInvalid(["give exactly one of yaml (the file's text) and example (a shipped example)"])
    return data


@router.get("/scenarios", response_model=Page[ScenarioOut], summary="Stored scenarios (staff)")
def list_scenarios(session: Session, caller: Staff, paging: Paging) -> Page[ScenarioOut]:
    stmt = service.readable_scenarios(caller).order_by(StoredScenario.id.desc())
    items, total = paginate(session, stmt, paging)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/scenarios",
    response_model=ScenarioDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Store a scenario file (YAML text, or JSON) or a shipped example",
    openapi_extra=_UPLOAD,
    responses={422: {"description": "the file breaks the schema; `problems` lists each field's problem"}},
)
def create_scenario(session: Session, caller: Staff, body: Annotated[Any, Body()] = None) -> ScenarioDetail:
    if body is None or body == b"":
        raise ScenarioInvalid(["send the scenario: YAML text, or JSON with yaml or example"])
    data = _upload(body)
    if data.example is not None:
        row = service.create_from_example(session, caller, data.example, name=data.name)
    else:
        row = service.create_scenario(session, caller, data.yaml or "", name=data.name)
    return _detail(session, row)


@router.get("/scenarios/examples", response_model=list[ExampleOut], summary="The shipped example scenarios")
def list_examples(caller: Staff) -> list[ExampleOut]:
    return [ExampleOut(key=e.key, name=e.name, description=e.description) for e in runs.examples()]


@router.post(
    "/scenarios/live",
    response_model=ScenarioDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Store the scenario of the fleet, contracts and leases as they are today",
)
def create_live(session: Session, caller: Staff, data: LiveIn | None = None) -> ScenarioDetail:
    data = data or LiveIn()
    row = service.create_live(
        session, caller, as_of=data.as_of, horizon_months=data.horizon_months, name=data.name
    )
    return _detail(session, row)


@router.get("/scenarios/{scenario_id}", response_model=ScenarioDetail)
def get_scenario(session: Session, caller: Staff, scenario_id: int) -> ScenarioDetail:
    return _detail(session, service.get_scenario(session, caller, scenario_id))


@router.delete("/scenarios/{scenario_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_scenario(session: Session, caller: Staff, scenario_id: int) -> Response:
    service.delete_scenario(session, caller, scenario_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/scenarios/{scenario_id}/runs", response_model=list[RunBrief])
def list_runs(session: Session, caller: Staff, scenario_id: int) -> list[RunBrief]:
    return [RunBrief.model_validate(r) for r in service.list_runs(session, caller, scenario_id)]


@router.post(
    "/scenarios/{scenario_id}/runs",
    response_model=RunOut,
    status_code=status.HTTP_201_CREATED,
    summary=f"Run: projection, funding routes and Monte Carlo (at most {runs.API_MAX_PATHS:,} paths)",
)
def create_run(session: Session, caller: Staff, scenario_id: int, data: RunIn | None = None) -> RunOut:
    data = data or RunIn()
    run = service.run_scenario(
        session,
        caller,
        scenario_id,
        paths=data.paths,
        seed=data.seed,
        routes=data.routes,
        backend=data.backend,
    )
    return RunOut.model_validate(run)


@router.get("/scenarios/{scenario_id}/runs/{run_id}", response_model=RunOut)
def get_run(session: Session, caller: Staff, scenario_id: int, run_id: int) -> RunOut:
    return RunOut.model_validate(service.get_run(session, caller, scenario_id, run_id))


@router.get(
    "/scenarios/{scenario_id}/runs/{run_id}/xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}, "description": "the run as an Excel workbook"}},
)
def get_run_xlsx(session: Session, caller: Staff, scenario_id: int, run_id: int) -> Response:
    content = service.run_workbook(session, caller, scenario_id, run_id)
    name = f"scenario-{scenario_id}-run-{run_id}.xlsx"
    return Response(
        content, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get(
    "/lease-exposures",
    response_model=list[ExposureOut],
    tags=["leases"],
    summary="The lessor's early warning: the exposure of every open lease you may read",
)
def list_exposures(
    session: Session,
    caller: Caller,
    as_of: Annotated[date | None, Query(description="default today (Asia/Shanghai)")] = None,
) -> list[ExposureOut]:
    return service.exposures(session, caller, as_of=as_of)


@router.get(
    "/leases/{lease_id}/exposure",
    response_model=ExposureOut,
    tags=["leases"],
    summary="The lessor's view: collateral state and occupancy, earned rent, coverage, LTV now and projected",
)
def get_exposure(
    session: Session,
    caller: Caller,
    lease_id: int,
    as_of: Annotated[date | None, Query(description="default today (Asia/Shanghai)")] = None,
    months: Annotated[
        int, Query(ge=1, le=120, description="trailing window for occupancy and coverage")
    ] = 12,
) -> ExposureOut:
    return service.exposure(session, caller, lease_id, as_of=as_of, months=months)
