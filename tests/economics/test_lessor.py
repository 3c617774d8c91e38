"""The lessor's view: residual and book value, LTV now and projected, coverage; the exposure endpoint with
its scoping (a lessor sees only its own leases, a customer none), worked by hand on the ``leased`` fleet."""

from __future__ import annotations

import itertools
import sys
import types
from datetime import date
from decimal import Decimal

from fastapi.testclient import TestClient

from computelease.economics import lessor
from computelease.economics.earned import contracted_by_nodes
from computelease.economics.service import _local_midnight

RENT = Decimal("103279.72")  # 1,200,000 at 6% over 12 months, in arrears (PMT rounded half-up)
AS_OF = "2026-03-31"


class TestValuation:
    item = lessor.Collateral(1, Decimal("2300000.00"), date(2025, 1, 1))

    def test_age_counts_whole_months(self) -> None:
        assert lessor.age_months(date(2025, 1, 31), date(2025, 2, 27)) == 0
        assert lessor.age_months(date(2025, 1, 1), date(2026, 3, 31)) == 14
        assert lessor.age_months(date(2025, 1, 15), date(2026, 3, 14)) == 13

    def test_residual_curve_is_linear_between_points_and_flat_beyond(self) -> None:
        assert lessor.residual_share(0) == Decimal("1.00")
        assert lessor.residual_share(12) == Decimal("0.625")
        assert lessor.residual_share(18) == Decimal("0.525")  # halfway from 62.5% to 42.5%
        assert lessor.residual_share(200) == Decimal("0.12")

    def test_market_value_at_fourteen_months(self) -> None:
        # 62.5% − (62.5% − 42.5%) × 2/12 = 59.1666…% of 2,300,000 = 1,360,833.333… → to the fen
        assert lessor.market_value(self.item, date(2026, 3, 31)) == Decimal("1360833.33")

    def test_book_value_follows_finance_depreciation(self) -> None:
        # 2,300,000 / 60 = 38,333.33 a month from February 2025: 14 charges by the end of March 2026.
        assert lessor.book_value(self.item, date(2026, 3, 31)) == Decimal("1763333.38")
        assert lessor.book_value(self.item, date(2025, 1, 31)) == Decimal("2300000.00")
        assert lessor.book_value(self.item, date(2031, 1, 1)) == Decimal("0.00")

    def test_ltv_curve_runs_principal_down_with_the_rents(self) -> None:
        future = [
            lessor.FutureRent(date(2026, 4, 15), Decimal("600000.00")),
            lessor.FutureRent(date(2026, 5, 15), Decimal("600000.00")),
        ]
        curve = lessor.ltv_curve(date(2026, 3, 31), Decimal("1200000.00"), future, [self.item])
        assert [p.outstanding for p in curve] == [
            Decimal("1200000.00"),
            Decimal("600000.00"),
            Decimal("0.00"),
        ]
        assert curve[0].ltv_market == Decimal("0.8818")  # 1,200,000 / 1,360,833.33
        assert curve[-1].ltv_market == Decimal("0.0000")
        assert all(a.market_value >= b.market_value for a, b in itertools.pairwise(curve))

    def test_no_collateral_and_no_rent_give_no_ratio(self) -> None:
        assert lessor.point(date(2026, 1, 1), Decimal("5.00"), []).ltv_market is None
        assert lessor.coverage(Decimal("10"), Decimal("0")) is None
        assert lessor.coverage(Decimal("1"), Decimal("4")) == Decimal("0.2500")


class TestContractedRevenue:
    def test_prorated_in_time_and_apportioned_by_gpu_hours(self, db, leased) -> None:
        # Contract A is worth 12 × 70,000 = 840,000 over 365 days; 15 January to 31 March is 76 of
        # them: 840,000 × 76 / 365 = 174,904.109… → 174,904.11, all earned on N1.
        start, end = _local_midnight(date(2026, 1, 15)), _local_midnight(date(2026, 4, 1))
        with db.transaction("test") as s:
            n = leased.nodes
            assert contracted_by_nodes(s, {n["N1"], n["N2"]}, start, end) == {"CNY": Decimal("174904.11")}
            assert contracted_by_nodes(s, {n["N2"]}, start, end) == {}
            assert contracted_by_nodes(s, set(), start, end) == {}


class TestExposureEndpoint:
    def test_hand_checked_figures(self, client: TestClient, world, leased, no_billing) -> None:
        r = client.get(
            f"/api/v1/leases/{leased.lease_x}/exposure",
            params={"as_of": AS_OF},
            headers=world.headers("lessor_x"),
        )
        assert r.status_code == 200, r.text
        x = r.json()
        assert x["code"] == "LX-1" and x["window_start"] == "2026-01-15" and x["window_end"] == AS_OF
        # Both nodes in service all window, N1 allocated all of it: occupancy 50%.
        assert x["occupancy"] == 0.5
        assert {n["serial"]: n["occupancy"] for n in x["nodes"]} == {"N1": 1.0, "N2": 0.0}
        assert x["allocated_gpu_hours"] == 8 * 76 * 24
        # Earned (contracted) against the two rents due on 15 February and 15 March.
        assert x["earned_basis"] == "contracted"
        assert x["earned"] == {"CNY": "174904.11"} and x["contracted"] == {"CNY": "174904.11"}
        assert Decimal(x["rent_due"]) == 2 * RENT
        assert Decimal(x["coverage"]) == Decimal("0.8467")  # 174,904.11 / 206,559.44
        # Nothing paid: 1,200,000 owed against two nodes worth 1,360,833.33 each (market).
        assert Decimal(x["outstanding_principal"]) == Decimal("1200000.00")
        assert Decimal(x["market_value"]) == Decimal("2721666.66")
        assert Decimal(x["book_value"]) == Decimal("3526666.76")
        assert Decimal(x["ltv_market"]) == Decimal("0.4409") and Decimal(x["ltv_book"]) == Decimal("0.3403")
        # Projected: now, then after each of the ten rents still to come, paid on time. The two overdue
        # rents stay owed: their principal, 97,279.72 (1,200,000 × 0.5% interest = 6,000) + 97,766.12
        # (1,102,720.28 × 0.5% = 5,513.60), is what is left at the end.
        curve = x["curve"]
        assert len(curve) == 11 and curve[0]["on"] == AS_OF and curve[1]["on"] == "2026-04-15"
        assert Decimal(curve[-1]["outstanding"]) == Decimal("195045.84")
        owed = [Decimal(p["outstanding"]) for p in curve]
        assert owed == sorted(owed, reverse=True)
        assert any("DOMAIN.md" in a for a in x["assumptions"])

    def test_billing_figure_is_used_when_billing_provides_it(
        self, client: TestClient, world, leased, monkeypatch
    ) -> None:
        calls = []

        def earned_by_nodes(session, node_ids, start, end):
            calls.append((set(node_ids), start, end))
            return {"CNY": Decimal("51639.86")}

        fake = types.ModuleType("computelease.billing.service")
        fake.earned_by_nodes = earned_by_nodes  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "computelease.billing.service", fake)
        r = client.get(
            f"/api/v1/leases/{leased.lease_x}/exposure",
            params={"as_of": AS_OF},
            headers=world.headers("operator"),
        )
        x = r.json()
        assert x["earned_basis"] == "invoiced" and x["earned"] == {"CNY": "51639.86"}
        assert x["contracted"] == {"CNY": "174904.11"}
        assert Decimal(x["coverage"]) == Decimal("0.2500")  # 51,639.86 / 206,559.44
        assert calls[0][0] == {leased.nodes["N1"], leased.nodes["N2"]}

    def test_scoping(self, client: TestClient, world, leased, no_billing) -> None:
        url = f"/api/v1/leases/{leased.lease_y}/exposure"
        r = client.get(url, headers=world.headers("lessor_x"))
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert "LY-1" not in r.text and "FOREIGN" not in r.text
        assert client.get(url, headers=world.headers("lessor_y")).status_code == 200
        assert client.get(url, headers=world.headers("operator")).status_code == 200
        assert client.get(url, headers=world.headers("admin")).status_code == 200
        r = client.get(f"/api/v1/leases/{leased.lease_x}/exposure", headers=world.headers("customer_a"))
        assert r.status_code == 403
        assert client.get(url).status_code == 401
        assert (
            client.get(
                f"/api/v1/leases/{leased.lease_x}/exposure?months=0", headers=world.headers("admin")
            ).status_code
            == 422
        )

    def test_a_lease_not_started_has_an_empty_window(
        self, client: TestClient, world, leased, no_billing
    ) -> None:
        r = client.get(
            f"/api/v1/leases/{leased.lease_x}/exposure",
            params={"as_of": "2025-12-31"},
            headers=world.headers("lessor_x"),
        )
        x = r.json()
        assert r.status_code == 200 and x["coverage"] is None and x["earned"] == {}
        assert Decimal(x["rent_due"]) == 0 and len(x["curve"]) == 13
