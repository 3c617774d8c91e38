"""Every /api/v1 route × every role.

Routes are discovered from the app, so a new domain's routes join the matrix by themselves. A route
whose path has a parameter this file does not know fails `test_every_path_parameter_is_known`: add the
parameter to FOREIGN_IDS (the id of a record the restricted callers must not reach) and seed that
record in the `matrix_world` fixture (tests/conftest.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from computelease.allocation.models import Allocation
from computelease.app import create_app
from computelease.catalog.models import CustomAccelerator, CustomSku
from computelease.config import Settings
from computelease.contracts.models import Contract, Customer, SlaPolicy
from computelease.finance.models import Lessor
from computelease.fleet.models import Node, Site


def fleet_ids(w) -> dict[str, object]:
    # The catalog is readable by every role, so any shipped id will do for its routes.
    return {
        "node_id": w.node.id,
        "site_id": w.site.id,
        "accelerator_id": "nvidia-h100-sxm",
        "sku_id": "nvidia-hgx-h100-8gpu",
        "node_ref": w.node.serial,
        "run_id": w.acceptance_run.id,
        "incident_id": w.incident.id,
    }


# For each restricted caller: the path parameters that point at records it must never reach, and the
# names of records that must never appear in anything it reads.
FOREIGN_IDS: dict[str, Callable[..., dict[str, object]]] = {
    "customer_a": lambda w, tok: {
        "customer_id": w.customer_b.id,
        "lessor_id": w.lessor_x.id,
        "token_id": tok,
        "contract_id": w.contract_b.id,
        "sla_policy_id": w.sla_policy_b.id,
        "lease_id": w.lease_y.id,
        "credit_line_id": w.credit_line_y.id,
        "invoice_id": w.invoice_b.id,
        "payment_id": w.payment_b.id,
        # Scenario routes refuse customers and lessors before any lookup: any id will do.
        "scenario_id": 1,
        **fleet_ids(w),
    },
    "lessor_x": lambda w, tok: {
        "customer_id": w.customer_a.id,
        "lessor_id": w.lessor_y.id,
        "token_id": tok,
        "contract_id": w.contract_a.id,
        "sla_policy_id": w.sla_policy_a.id,
        "lease_id": w.lease_y.id,
        "credit_line_id": w.credit_line_y.id,
        "invoice_id": w.invoice_b.id,
        "payment_id": w.payment_b.id,
        # Scenario routes refuse customers and lessors before any lookup: any id will do.
        "scenario_id": 1,
        **fleet_ids(w),
    },
}
FOREIGN_NAMES = {
    "customer_a": [
        "Customer B FOREIGN-TO-A",
        "Lessor X own",
        "Lessor Y FOREIGN-TO-X",
        "Matrix contract B FOREIGN-TO-A",
        "Matrix SLA B FOREIGN-TO-A",
        "FOREIGN-TO-ALL",
        "LEASE-Y-FOREIGN-TO-X",
        "Lessee FOREIGN-TO-X",
        "Credit line FOREIGN-TO-X",
        "CL-2026-FOREIGN-TO-A",
        "PAY-FOREIGN-TO-A",
    ],
    "lessor_x": [
        "Customer A own",
        "Customer B FOREIGN-TO-A",
        "Lessor Y FOREIGN-TO-X",
        "Matrix contract A own",
        "Matrix contract B FOREIGN-TO-A",
        "Matrix SLA A own",
        "Matrix SLA B FOREIGN-TO-A",
        "FOREIGN-TO-ALL",
        "LEASE-Y-FOREIGN-TO-X",
        "Lessee FOREIGN-TO-X",
        "Credit line FOREIGN-TO-X",
        "CL-2026-FOREIGN-TO-A",
        "PAY-FOREIGN-TO-A",
    ],
}
KNOWN_PARAMS = {
    "customer_id",
    "lessor_id",
    "token_id",
    "contract_id",
    "sla_policy_id",
    "node_id",
    "site_id",
    "accelerator_id",
    "sku_id",
    "lease_id",
    "credit_line_id",
    "node_ref",
    "run_id",
    "incident_id",
    "invoice_id",
    "payment_id",
    "scenario_id",
}


def api_routes() -> list[tuple[str, str]]:
    # The OpenAPI document is FastAPI's public list of every route, however routers are nested.
    schema = create_app(Settings(database_url="sqlite://", secret_key="k" * 40)).openapi()
    return sorted(
        (method.upper(), path)
        for path, ops in schema["paths"].items()
        if path.startswith("/api/v1")
        for method in ops
    )


ROUTES = api_routes()
PARAM = re.compile(r"{(\w+)}")


def fill(path: str, ids: dict[str, int]) -> str:
    return PARAM.sub(lambda m: str(ids[m.group(1)]), path)


def test_routes_were_discovered() -> None:
    paths = {p for _, p in ROUTES}
    assert "/api/v1/customers/{customer_id}" in paths and "/api/v1/audit" in paths


def test_every_path_parameter_is_known() -> None:
    unknown = {p for _, path in ROUTES for p in PARAM.findall(path)} - KNOWN_PARAMS
    assert not unknown, f"register these path parameters in FOREIGN_IDS: {unknown}"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_refused(client: TestClient, method: str, path: str) -> None:
    url = fill(path, dict.fromkeys(KNOWN_PARAMS, 1))
    for headers in ({}, {"Authorization": "Bearer cl_not-a-real-token"}, {"Authorization": "Basic eDp5"}):
        r = client.request(method, url, headers=headers)
        assert r.status_code == 401, (method, url, headers, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]


@pytest.mark.parametrize("who", ["customer_a", "lessor_x"])
def test_restricted_callers_never_reach_foreign_records(client: TestClient, matrix_world, who: str) -> None:
    world = matrix_world
    headers = world.headers(who)
    admin_token_id = client.get("/api/v1/tokens", headers=world.headers("admin")).json()[0]["id"]
    ids = FOREIGN_IDS[who](world, admin_token_id)

    def snapshot() -> list:
        with client.app.state.db.transaction(actor="test") as s:
            return [
                sorted((c.id, c.name, str(c.credit_limit)) for c in s.scalars(select(Customer))),
                sorted((x.id, x.name) for x in s.scalars(select(Lessor))),
                sorted((c.id, c.name, c.status, str(c.total_value)) for c in s.scalars(select(Contract))),
                sorted((p.id, p.name) for p in s.scalars(select(SlaPolicy))),
                sorted((n.id, n.serial, n.state, n.fabric, n.site_id) for n in s.scalars(select(Node))),
                sorted((x.id, x.code, x.name) for x in s.scalars(select(Site))),
                sorted(a.id for a in s.scalars(select(CustomAccelerator))),
                sorted(k.id for k in s.scalars(select(CustomSku))),
                sorted(a.id for a in s.scalars(select(Allocation))),
            ]

    before = snapshot()
    for method, path in ROUTES:
        url = fill(path, ids)
        body = {} if method in {"POST", "PATCH", "PUT"} else None
        r = client.request(method, url, headers=headers, json=body)
        if method == "GET":
            assert r.status_code in {200, 403, 404}, (method, url, r.status_code, r.text)
            text = r.text
            if r.headers["content-type"].startswith("application/problem+json"):
                # A problem's `instance` is the caller's own URL echoed back, not a record it read.
                text = json.dumps({k: v for k, v in r.json().items() if k != "instance"}, ensure_ascii=False)
            for name in FOREIGN_NAMES[who]:
                assert name not in text, f"{who} read {name!r} through {method} {url}"
        else:
            assert r.status_code in {403, 404, 422}, (method, url, r.status_code, r.text)
    assert snapshot() == before, "a restricted caller changed a record"


def test_restricted_callers_do_see_their_own(client: TestClient, world) -> None:
    r = client.get(f"/api/v1/customers/{world.customer_a.id}", headers=world.headers("customer_a"))
    assert r.status_code == 200 and r.json()["name"] == "Customer A own"
    listing = client.get("/api/v1/customers", headers=world.headers("customer_a")).json()
    assert [c["name"] for c in listing["items"]] == ["Customer A own"]
    r = client.get("/api/v1/lessors", headers=world.headers("lessor_x")).json()
    assert [x["name"] for x in r["items"]] == ["Lessor X own"]


def test_staff_see_everyone(client: TestClient, world) -> None:
    for who in ("admin", "operator"):
        names = {
            c["name"] for c in client.get("/api/v1/customers", headers=world.headers(who)).json()["items"]
        }
        assert names == {"Customer A own", "Customer B FOREIGN-TO-A"}


@pytest.mark.parametrize("who", ["operator", "customer_a", "lessor_x"])
@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/tokens", "/api/v1/users"])
def test_admin_only_routes(client: TestClient, world, who: str, path: str) -> None:
    r = client.get(path, headers=world.headers(who))
    assert r.status_code == 403
    assert "admin" in r.json()["detail"]


def test_nodes_are_seen_by_who_rents_or_finances_them(client: TestClient, matrix_world) -> None:
    w = matrix_world
    url = f"/api/v1/nodes/{w.node.id}"
    # Customer B's contract runs on the node and lessor Y's lease finances it; A and X have no claim.
    assert client.get(url, headers=w.headers("customer_b")).json()["serial"] == "NODE-FOREIGN-TO-ALL"
    assert client.get(url, headers=w.headers("lessor_y")).json()["serial"] == "NODE-FOREIGN-TO-ALL"
    assert client.get(url, headers=w.headers("customer_a")).status_code == 404
    assert client.get(url, headers=w.headers("lessor_x")).status_code == 404
