"""Fleet use cases against the database: nodes and GPUs, state changes and their history, state
intervals, scoping, sites and racks, and the demo seeder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from computelease.auth.core import SYSTEM, Principal, Role
from computelease.catalog import service as catalog_service
from computelease.demo import DemoWorld
from computelease.errors import Conflict, NotFound, Unprocessable
from computelease.fleet import demo, service
from computelease.fleet.core import Event, HistoryInvalid, IllegalTransition, NodeState, replay
from computelease.fleet.models import Node, NodeEvent
from computelease.fleet.schemas import GpuIn, NodePatch, RackIn, SitePatch
from computelease.kit.time import utcnow

S = NodeState
T0 = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)  # as in conftest.py
CUSTOMER = Principal(role=Role.customer, actor="token:c", customer_id=1)
LESSOR = Principal(role=Role.lessor, actor="token:l", lessor_id=1)
OPERATOR = Principal(role=Role.operator, actor="token:op")


class TestNodes:
    def test_gpus_come_from_the_sku_and_the_model_from_its_accelerator(self, session, fleet) -> None:
        node = service.get_node(session, SYSTEM, fleet.nodes["N1"])
        assert node.model == "nvidia-h100-sxm" and node.sku_id == "nvidia-hgx-h100-8gpu"
        assert [g.index for g in node.gpus] == list(range(8))
        assert node.gpus[3].uuid == "GPU-n1-3"
        assert service.get_node(session, SYSTEM, fleet.nodes["N3"]).model == "huawei-ascend-910b"

    def test_a_custom_sku_is_accepted_with_its_own_gpu_count(self, session, fleet, build) -> None:
        catalog_service.create_sku(
            session,
            {
                "id": "acme-h20-4gpu",
                "name": "4× H20 edge box",
                "accelerator_id": "nvidia-h20",
                "gpus_per_node": 4,
                "source": "our purchase order",
                "confidence": "datasheet",
            },
        )
        node = service.create_node(session, build.node(fleet.colo, "E1", sku_id="acme-h20-4gpu"))
        assert len(node.gpus) == 4 and node.model == "nvidia-h20"

    def test_bad_nodes_are_refused_with_what_to_fix(self, session, fleet, build) -> None:
        for overrides, error, message in (
            ({"sku_id": "nvidia-hgx-h999"}, Unprocessable, "no server SKU 'nvidia-hgx-h999'"),
            ({"serial": "N1"}, Conflict, "already has the serial 'N1'"),
            ({"site_id": 999_999}, Unprocessable, "site 999999 does not exist"),
            ({"gpus": [GpuIn(index=8)]}, Unprocessable, "GPUs 0–7"),
            ({"gpus": [GpuIn(index=0, uuid="GPU-n1-0")]}, Conflict, "GPU uuid 'GPU-n1-0' already belongs"),
            ({"state_since": utcnow() + timedelta(days=1)}, Unprocessable, "in the future"),
        ):
            with pytest.raises(error, match=message):
                service.create_node(session, build.node(**({"site_id": fleet.own} | overrides)))
        with pytest.raises(Unprocessable, match="is not in site sh-1"):
            service.create_node(session, build.node(fleet.colo, "NEW", rack_id=fleet.racks["A01"]))
        assert session.scalar(select(Node).where(Node.serial == "NEW")) is None

    def test_edits_move_sites_and_swap_gpus(self, session, fleet) -> None:
        node = service.update_node(session, SYSTEM, fleet.nodes["N1"], NodePatch(site_id=fleet.colo))
        assert node.site_code == "sh-1" and node.rack_id is None
        with pytest.raises(Unprocessable, match="serial cannot be cleared"):
            service.update_node(session, SYSTEM, fleet.nodes["N1"], NodePatch(serial=None))
        # Swapping two UUIDs between slots must not trip the unique index.
        patch = NodePatch(gpus=[GpuIn(index=0, uuid="GPU-n1-1"), GpuIn(index=1, uuid="GPU-n1-0")])
        node = service.update_node(session, SYSTEM, fleet.nodes["N1"], patch)
        assert [g.uuid for g in node.gpus[:2]] == ["GPU-n1-1", "GPU-n1-0"]
        assert node.gpus[0].serial == "1650000000000"  # not named in the patch: kept

    def test_only_an_ordered_node_can_be_removed(self, session, fleet) -> None:
        with pytest.raises(Conflict, match="N1 is in_service; only an ordered node"):
            service.delete_node(session, SYSTEM, fleet.nodes["N1"])
        service.delete_node(session, SYSTEM, fleet.nodes["N3"])
        assert session.get(Node, fleet.nodes["N3"]) is None
        assert session.scalars(select(NodeEvent).where(NodeEvent.node_id == fleet.nodes["N3"])).all() == []


class TestTransitions:
    def test_each_change_is_an_event_with_its_actor(self, db, fleet) -> None:
        with db.transaction("token:7:ops") as s:
            s.info["actor"] = "token:7:ops"
            service.transition(s, OPERATOR, fleet.nodes["N2"], "repair", reason="sent to vendor")
        with db.transaction("test") as s:
            node = service.get_node(s, SYSTEM, fleet.nodes["N2"])
            history = service.events(s, SYSTEM, node.id)
            assert node.state is S.repair and node.state_since == history[-1].at
            assert [(e.from_state, e.to_state) for e in history] == [
                (None, S.ordered),
                (S.ordered, S.delivered),
                (S.delivered, S.accepted),
                (S.accepted, S.in_service),
                (S.in_service, S.faulty),
                (S.faulty, S.repair),
            ]
            assert history[-1].actor == "token:7:ops" and history[-1].reason == "sent to vendor"
            assert replay([Event(e.at, e.to_state, e.from_state) for e in history]) is S.repair

    def test_an_illegal_change_changes_nothing(self, db, fleet) -> None:
        with pytest.raises(IllegalTransition) as info, db.transaction("test") as s:
            service.transition(s, SYSTEM, fleet.nodes["N3"], "in_service")
        assert info.value.problem()["allowed"] == ["delivered"]
        with db.transaction("test") as s:
            assert service.get_node(s, SYSTEM, fleet.nodes["N3"]).state is S.ordered
            assert len(service.events(s, SYSTEM, fleet.nodes["N3"])) == 1

    def test_history_is_appended_never_rewritten(self, session, fleet) -> None:
        with pytest.raises(HistoryInvalid, match="cannot be dated earlier"):
            service.transition(session, SYSTEM, fleet.nodes["N2"], "repair", at=T0)
        with pytest.raises(HistoryInvalid, match="future"):
            service.transition(session, SYSTEM, fleet.nodes["N2"], "repair", at=utcnow() + timedelta(hours=1))


class TestIntervals:
    def test_the_fleet_over_a_period_and_open_ended(self, session, fleet) -> None:
        start, end = T0 + timedelta(hours=60), T0 + timedelta(hours=120)
        found = service.state_intervals(session, SYSTEM, start, end)
        by_node = {}
        for i in found:
            by_node.setdefault(i.node_id, []).append((i.state, i.start - T0, i.end - T0))
        hours = timedelta(hours=1)
        assert by_node[fleet.nodes["N2"]] == [
            (S.accepted, 60 * hours, 72 * hours),
            (S.in_service, 72 * hours, 96 * hours),
            (S.faulty, 96 * hours, 120 * hours),
        ]
        assert by_node[fleet.nodes["N3"]] == [(S.ordered, 60 * hours, 120 * hours)]
        # Every node's time in the period is covered once: capacity-time is conserved.
        for node_id, pieces in by_node.items():
            assert sum((e - s for _, s, e in pieces), timedelta(0)) == end - start, node_id
        # Without a period end, the current state is open.
        found = service.node_intervals(session, SYSTEM, fleet.nodes["S1"])
        assert [(i.state, i.end) for i in found][-1] == (S.in_service, None)
        assert (
            service.state_intervals(session, SYSTEM, node_ids=[fleet.nodes["N1"]])[0].node_id
            == fleet.nodes["N1"]
        )


class TestScope:
    @pytest.mark.parametrize("principal", [CUSTOMER, LESSOR], ids=["customer", "lessor"])
    def test_customers_and_lessors_see_no_fleet_yet(self, session, fleet, principal) -> None:
        assert session.scalars(service.readable_nodes(principal)).all() == []
        assert session.scalars(service.readable_sites(principal)).all() == []
        assert service.state_intervals(session, principal) == []
        assert all(c.nodes == 0 for c in service.state_counts(session, principal))
        with pytest.raises(NotFound):
            service.get_node(session, principal, fleet.nodes["N1"])
        with pytest.raises(NotFound):
            service.node_intervals(session, principal, fleet.nodes["N1"])
        with pytest.raises(NotFound):
            service.get_site(session, principal, fleet.own)
        assert service.export_nodes(session, principal).count(b"\r\n") == 1  # the header only

    def test_staff_see_everything(self, session, fleet) -> None:
        assert len(session.scalars(service.readable_nodes(OPERATOR)).all()) == 4
        assert len(session.scalars(service.readable_sites(OPERATOR)).all()) == 2
        counts = {c.state: (c.nodes, c.gpus) for c in service.state_counts(session, OPERATOR)}
        assert counts[S.in_service] == (2, 16) and counts[S.faulty] == (1, 8) and counts[S.sold] == (0, 0)


class TestSites:
    def test_unique_codes_and_names_and_a_site_with_nodes_stays(self, session, fleet, build) -> None:
        with pytest.raises(Conflict, match="code 'qy-1' already exists"):
            service.create_site(session, build.site("qy-1", name="another"))
        with pytest.raises(Conflict, match="name"):
            service.update_site(session, SYSTEM, fleet.colo, SitePatch(name="庆阳智算中心 qy-1"))
        with pytest.raises(Conflict, match="still holds nodes"):
            service.delete_site(session, SYSTEM, fleet.own)
        service.delete_site(
            session, SYSTEM, service.create_site(session, build.site("tmp", name="tmp", racks=[])).id
        )

    def test_exact_tariffs_and_pue(self, db, fleet) -> None:
        with db.transaction("test") as s:
            site = service.get_site(s, SYSTEM, fleet.own)
            assert site.power_price_per_kwh == Decimal("0.3512") and site.pue == Decimal("1.200")

    def test_rack_load_against_its_budget(self, session, fleet) -> None:
        rack = service.add_rack(session, SYSTEM, fleet.own, RackIn(name="A03", power_kw=Decimal("12")))
        with pytest.raises(Conflict, match="already has a rack 'A03'"):
            service.add_rack(session, SYSTEM, fleet.own, RackIn(name="A03"))
        for serial in ("N1", "N2"):
            service.update_node(session, SYSTEM, fleet.nodes[serial], NodePatch(rack_id=rack.id))
        site = service.get_site(session, SYSTEM, fleet.own)
        loads = {load.rack.name: load for load in service.rack_loads(session, SYSTEM, site)}
        # Two 8×H100 nodes at the catalog's typical 6.2 kW exceed a 12 kW budget.
        assert (
            loads["A03"].nodes == 2
            and loads["A03"].typical_kw == Decimal("12.4")
            and loads["A03"].over_budget
        )
        assert loads["A01"].nodes == 0 and not loads["A01"].over_budget


class TestDemo:
    def test_the_full_demo_is_about_250_nodes_of_four_models(self) -> None:
        assert 240 <= sum(b.nodes for b in demo.BATCHES) <= 260
        skus = {b.sku for b in demo.BATCHES}
        assert skus == {
            "nvidia-hgx-h100-8gpu",
            "nvidia-hgx-h800-8gpu",
            "nvidia-hgx-h20-8gpu",
            "huawei-ascend-910b-8card",
        }
        assert next(b for b in demo.BATCHES if b.sku == "nvidia-hgx-h100-8gpu").cost == Decimal("2300000.00")

    def test_seeding_builds_legal_histories_and_hands_on_the_fleet(self, session, monkeypatch) -> None:
        # The same batches, a few nodes each, so the test stays fast; the troubled node numbers fit.
        small = tuple(b.__class__(**{**b.__dict__, "nodes": min(b.nodes, 8)}) for b in demo.BATCHES)
        monkeypatch.setattr(demo, "BATCHES", small)
        world = DemoWorld()
        demo.seed(session, world)
        sites, nodes = world.extra["fleet"]["sites"], world.extra["fleet"]["nodes"]
        assert {s.kind.value for s in sites} == {"own_center", "colocation"}
        assert len(nodes) == sum(b.nodes for b in small)
        states = {n.state for n in nodes}
        assert S.in_service in states and {S.faulty, S.repair, S.maintenance} <= states
        assert S.delivered in states  # the batch still arriving
        for node in nodes:
            history = service.events(session, SYSTEM, node.id)
            assert replay([Event(e.at, e.to_state, e.from_state) for e in history]) is node.state
            assert len(node.gpus) == 8
