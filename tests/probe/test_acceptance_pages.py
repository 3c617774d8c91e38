"""Acceptance pages: the node's runs (the partial the node page includes) and one run's full report."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from computelease.auth import service as auth
from computelease.auth.core import SYSTEM, Role
from computelease.fleet import service as fleet
from computelease.fleet.core import NodeState
from computelease.fleet.schemas import GpuIn, NodeIn, SiteIn
from computelease.probe import pages, service
from computelease.probe.runner import run_probe
from computelease.web.pages import environment

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch) -> None:
    """Argon2 at its real cost is most of a page test's time; what is tested here is the pages."""
    from argon2 import PasswordHasher

    monkeypatch.setattr("computelease.auth.core._hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def runs(db, world, node, catalog, thresholds, clock) -> tuple[int, list[int]]:
    """A delivered node with two runs: a pass (which accepts it), then a warn (GPU 1 at 700 TFLOPS)."""
    with db.transaction(actor="test") as s:
        site = fleet.create_site(
            s,
            SiteIn(code="bj-1", name="Beijing 1", kind="colocation", city="北京", pue="1.4",
                   power_price_per_kwh="0.7"),
        )  # fmt: skip
        target = fleet.create_node(
            s,
            NodeIn(
                serial="HGX-P1",
                sku_id="nvidia-hgx-h100-8gpu",
                site_id=site.id,
                purchase_cost="2300000.00",
                purchase_date="2025-01-01",
                state=NodeState.delivered,
                gpus=[GpuIn(index=i, uuid=f"GPU-fake-{i}") for i in range(8)],
            ),
        )
        ids = []
        for slow in (None, 1):
            backend = node(8)
            if slow is not None:
                backend.fake_gpus[slow].tflops["bf16"] = backend.fake_gpus[slow].reference_tflops = 700.0
            report = run_probe(
                backend, mode="quick", catalog=catalog, thresholds=thresholds, node="HGX-P1", now=clock
            )
            ids.append(service.store_report(s, SYSTEM, "HGX-P1", report).run.id)
        return target.id, ids


def _login(client: TestClient, db, username: str, role: Role, **scope) -> TestClient:
    with db.transaction("test") as s:
        auth.create_user(s, username=username, password=PASSWORD, role=role, **scope)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    return client


def test_the_node_runs_page_lists_every_run_newest_first(client, db, world, runs) -> None:
    node_id, (first, second) = runs
    op = _login(client, db, "op", Role.operator)
    r = op.get(f"/fleet/nodes/{node_id}/acceptance")
    assert r.status_code == 200
    html = r.text
    assert html.index(f'data-run="{second}"') < html.index(f'data-run="{first}"')
    assert f'href="/acceptance/{first}"' in html and 'data-verdict="warn"' in html
    assert "#1 700.0 (94.3%)" in html and "#0 789.0 (106.3%)" in html
    assert "→" in html  # the first run accepted the node


def test_the_run_page_shows_every_check_with_its_threshold(client, db, world, runs) -> None:
    _node_id, (_first, second) = runs
    op = _login(client, db, "op", Role.operator)
    html = op.get(f"/acceptance/{second}").text
    assert "HGX-P1" in html and "580.65.06" in html and "2.15.0+cu128" in html
    gpu1 = html[html.index('id="gpu-1"') : html.index('id="gpu-2"')]
    row = re.search(r'<tr data-check="gemm_bf16" data-verdict="warn">.*?</tr>', gpu1, re.S).group(0)
    assert "700.00" in row and "≥ 742.05" in row and "≥ 593.64" in row
    assert 'data-check="device_copy"' in gpu1 and 'data-check="sdc_bf16"' in gpu1
    assert 'data-check="cross_gpu_bitwise"' in html  # the node's own checks


def test_the_partial_renders_from_the_context_the_node_page_gets(db, world, runs) -> None:
    node_id, (first, second) = runs
    from computelease.web import i18n

    i18n.current.set("en")  # the locale a request would have set; another test may have left zh_CN
    with db.transaction("test") as s:
        context = pages.acceptance_context(s, SYSTEM, node_id)
        html = environment().get_template("probe/_acceptance.html").render(**context)
    assert f'data-run="{first}"' in html and f'data-run="{second}"' in html
    with db.transaction("test") as s:
        empty = pages.acceptance_context(s, SYSTEM, node_id + 1000)
        assert "Empty: no acceptance run" in environment().get_template("probe/_acceptance.html").render(
            **empty
        )


def test_a_customer_sees_no_run(client, db, world, runs) -> None:
    node_id, (first, _second) = runs
    customer = _login(client, db, "cust", Role.customer, customer_id=world.customer_a.id)
    for path in (f"/acceptance/{first}", f"/fleet/nodes/{node_id}/acceptance"):
        r = customer.get(path)
        assert r.status_code == 404, path
        assert "GPU-fake" not in r.text and "789.0" not in r.text
