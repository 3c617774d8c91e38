"""The scenario of the live database: the seeded fleet, contracts and leases, with stated assumptions."""

from __future__ import annotations

from datetime import date

import yaml
from fastapi.testclient import TestClient

from computelease.auth.core import SYSTEM
from computelease.economics import live
from computelease.economics.runs import parse_text

AS_OF = date(2026, 3, 31)


def test_the_live_scenario_reflects_the_fleet(db, leased) -> None:
    with db.transaction("test") as s:
        text = live.live_yaml(s, SYSTEM, as_of=AS_OF)
        scenario = live.scenario_from_database(s, SYSTEM, as_of=AS_OF)
    assert text.startswith("# Built by computelease") and "DOMAIN.md" in text
    data = yaml.safe_load(text)
    # Three 8×H100 nodes bought on 2025-01-01 for RMB 2.3M each, in one purchase at site qy-1.
    (lot,) = data["fleet"]
    assert lot == {
        "sku": "nvidia-hgx-h100-8gpu",
        "count": 3,
        "unit_price": 2300000,
        "date": date(2025, 1, 1),
        "site": "qy-1",
        "in_service_months": 0,
    }
    (site,) = data["sites"]
    assert site["power_price_kwh"] == 0.45 and site["pue"] == 1.25 and site["rack_per_node_month"] == 8000
    # Contract A: 8 GPUs for the twelve months of 2026, worth 12 × 70,000.
    (contract,) = data["contracts"]
    assert contract["capacity"] == {"gpus": 8} and contract["price"] == {"total": 840000}
    assert contract["start"] == date(2026, 1, 1) and contract["months"] == 12
    # Both leases are direct: one instrument, the amounts summed, the first lease's terms.
    lease = data["funding"]["direct_lease"]
    assert lease["amount"] == 2400000 and lease["rate"] == 0.06 and lease["months"] == 12
    assert lease["date"] == date(2026, 1, 15)
    # From the first purchase to 60 months past the as-of month.
    assert data["start"] == date(2025, 1, 1) and data["horizon_months"] == 15 + 60
    assert scenario.fleet[0].count == 3 and scenario.funding.instruments == ("direct_lease",)
    assert parse_text(text).name == scenario.name


def test_live_endpoint_stores_an_editable_scenario(client: TestClient, world, leased) -> None:
    r = client.post("/api/v1/scenarios/live", json={"as_of": "2026-03-31"}, headers=world.headers("operator"))
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["source"] == "live" and "unit_price: 2300000" in stored["yaml"]
    run = client.post(
        f"/api/v1/scenarios/{stored['id']}/runs", json={"paths": 500}, headers=world.headers("operator")
    )
    assert run.status_code == 201 and run.json()["status"] == "done"
    assert run.json()["routes"] == ["own", "direct_lease"]
    assert client.post("/api/v1/scenarios/live", headers=world.headers("lessor_x")).status_code == 403


def test_an_empty_fleet_is_a_clear_422(client: TestClient, world) -> None:
    r = client.post("/api/v1/scenarios/live", headers=world.headers("admin"))
    assert r.status_code == 422 and "no nodes" in r.json()["detail"]


def test_cli_writes_the_yaml_and_fails_in_one_line(db, leased, tmp_path, monkeypatch, capsys) -> None:
    from computelease.cli import main
    from computelease.config import get_settings

    monkeypatch.setenv("COMPUTELEASE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        target = tmp_path / "live.yaml"
        assert main(["scenario", "live", "--as-of", "2026-03-31", "--out", str(target)]) == 0
        assert "wrote" in capsys.readouterr().err
        assert main(["scenario", "validate", str(target)]) == 0
        assert "3 nodes, 24 GPUs" in capsys.readouterr().out
        assert main(["scenario", "live", "--as-of", "2026-03-31", "--json"]) == 0
        data = __import__("json").loads(capsys.readouterr().out)
        assert data["scenario"]["fleet"][0]["count"] == 3 and data["assumptions"]
        assert main(["scenario", "live", "--as-of", "31/03/2026"]) != 0
        err = capsys.readouterr().err.strip()
        assert "YYYY-MM-DD" in err
    finally:
        get_settings.cache_clear()


def test_demo_scenarios_and_the_live_demo_fleet(db) -> None:
    from sqlalchemy import select

    from computelease import demo
    from computelease.economics import service
    from computelease.economics.models import ScenarioRun, ScenarioSource, StoredScenario

    with db.transaction("test") as s:
        demo.seed(s)  # the economics seeder is one of demo.SEEDERS
        stored = list(s.scalars(select(StoredScenario)))
        assert sorted(x.source for x in stored).count(ScenarioSource.example) == 4
        (live_row,) = [x for x in stored if x.source is ScenarioSource.live]
        assert "assumed 6.2 kW" in live_row.yaml  # SKUs without a catalog power figure, stated
        (run,) = s.scalars(select(ScenarioRun))
        assert run.status.value == "done" and run.summary["monte_carlo"]["paths"] == 2000
        again = service.run_scenario(s, SYSTEM, live_row.id, paths=200)
        assert again.status.value == "done", again.error
