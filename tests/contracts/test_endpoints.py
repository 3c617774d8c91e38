"""The contract API: /api/v1/contracts, /api/v1/sla-policies, scoping and problem details."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

API = "/api/v1"


def body(customer_id: int, **overrides: object) -> dict:
    data: dict = {
        "customer_id": customer_id,
        "name": "154.5 PFLOPS BF16, 5 years",
        "capacity_unit": "pflops",
        "capacity": "154.5",
        "precision": "bf16",
        "accelerator_model": "nvidia-h100-sxm",
        "placement": "same_fabric",
        "start_date": "2025-03-01",
        "end_date": "2030-02-28",
        "pricing": "per_pflops_month",
        "price": "5000.0000",
        "om_monthly_fee": "152500.00",
    }
    data.update(overrides)
    return data


def is_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return r.json()


class TestCreateAndRead:
    def test_operator_creates_and_reads_back(self, client: TestClient, world) -> None:
        op = world.headers("operator")
        r = client.post(f"{API}/contracts", headers=op, json=body(world.customer_a.id))
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["status"] == "draft" and c["allowed_transitions"] == ["signed"]
        assert c["total_value"] == "55500000.00" and c["term_months"] == "60.0000"
        assert c["capacity_by_model"] == [
            {
                "model": "nvidia-h100-sxm",
                "gpus": 157,
                "nodes": 20,
                "pflops": "155.3358",
                "precision": "bf16",
                "sku": "nvidia-hgx-h100-8gpu",
            }
        ]
        assert (c["starts_at"], c["ends_at"]) == ("2025-02-28T16:00:00Z", "2030-02-28T16:00:00Z")
        assert [e["to_status"] for e in c["events"]] == ["draft"]
        again = client.get(f"{API}/contracts/{c['id']}", headers=op).json()
        assert again["total_value"] == c["total_value"] and again["customer_name"] == "Customer A own"

    BAD_INPUT = (
        ({"timezone": "Asia/Beijing"}, "timezone: Value error, 'Asia/Beijing' is not an IANA time zone"),
        ({"price": "1.23456"}, "price: Decimal input should have no more than 4 decimal places"),
        ({"capacity_unit": "racks"}, "capacity_unit: Input should be 'pflops', 'gpus' or 'nodes'"),
        ({"accelerator_model": "nvidia-h900"}, "no accelerator 'nvidia-h900' in the catalog"),
        ({"accelerator_model": None}, "say which accelerators may serve the contract"),
        ({"end_date": "2025-02-01"}, "end date 2025-02-01 is before start date 2025-03-01"),
        ({"pricing": "monthly_fee", "price": "1.005"}, "a fixed monthly fee is an amount"),
        ({"capacity_unit": "gpus", "capacity": "7.5"}, "capacity in gpus must be a whole number"),
        ({"sla_policy_id": 987654}, "sla_policy_id 987654 is not an SLA policy"),
        (
            {"accelerator_model": "huawei-ascend-910b", "precision": "fp16"},
            "fp16 dense TFLOPS of huawei-ascend-910b is unknown",
        ),
    )

    def test_bad_input_is_a_422_that_says_what_to_fix(self, client: TestClient, world) -> None:
        # One client for every case: each case is a whole request, so they cannot affect each other.
        for overrides, fragment in self.BAD_INPUT:
            r = client.post(
                f"{API}/contracts",
                headers=world.headers("operator"),
                json=body(world.customer_a.id, **overrides),
            )
            assert fragment in is_problem(r, 422)["detail"], (overrides, r.json()["detail"])

    def test_list_filters(self, client: TestClient, world, deals) -> None:
        op = world.headers("operator")
        client.post(f"{API}/contracts/{deals.contract_b.id}/transitions", headers=op, json={"to": "signed"})
        signed = client.get(f"{API}/contracts", headers=op, params={"status": "signed"}).json()
        assert [c["name"] for c in signed["items"]] == ["Contract B FOREIGN-TO-A"] and signed["total"] == 1
        mine = client.get(f"{API}/contracts", headers=op, params={"customer_id": world.customer_a.id}).json()
        assert [c["name"] for c in mine["items"]] == ["Contract A own"]
        r = client.get(f"{API}/contracts", headers=op, params={"status": "happy"})
        assert "status (query)" in is_problem(r, 422)["detail"]


class TestTransitions:
    def test_illegal_transition_names_current_requested_allowed(
        self, client: TestClient, world, deals
    ) -> None:
        url = f"{API}/contracts/{deals.contract_a.id}/transitions"
        p = is_problem(client.post(url, headers=world.headers("operator"), json={"to": "ended"}), 409)
        assert (p["current"], p["requested"], p["allowed"]) == ("draft", "ended", ["signed"])
        assert p["detail"] == "a draft contract cannot become ended; allowed from draft: signed"

    def test_life_and_locked_terms(self, client: TestClient, world, deals) -> None:
        op, cid = world.headers("operator"), deals.contract_a.id
        r = client.post(
            f"{API}/contracts/{cid}/transitions",
            headers=op,
            json={"to": "signed", "at": "2025-12-01T09:00:00+08:00"},
        )
        assert r.status_code == 200 and r.json()["status"] == "signed"
        assert r.json()["events"][0]["at"] == "2025-12-01T01:00:00Z"
        p = is_problem(client.patch(f"{API}/contracts/{cid}", headers=op, json={"capacity": "16"}), 409)
        assert "is signed; its terms (capacity) can change only in draft" in p["detail"]
        r = client.patch(f"{API}/contracts/{cid}", headers=op, json={"name": "Renamed after signing"})
        assert r.status_code == 200 and r.json()["name"] == "Renamed after signing"
        r = client.post(
            f"{API}/contracts/{cid}/transitions",
            headers=op,
            json={"to": "active", "at": "2026-01-01T00:00:00"},
        )
        assert "at: Input should have timezone info" in is_problem(r, 422)["detail"]

    def test_patch_in_draft_recomputes(self, client: TestClient, world, deals) -> None:
        r = client.patch(
            f"{API}/contracts/{deals.contract_a.id}",
            headers=world.headers("operator"),
            json={"pricing": "per_gpu_hour", "price": "2.3456", "currency": "USD"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["total_value"] == "164379.65"  # 2.3456 × 8 × 8760 h = 164,379.648
        assert r.json()["price"] == "2.3456"


class TestScope:
    def test_customer_sees_only_its_own(self, client: TestClient, world, deals) -> None:
        a = world.headers("customer_a")
        listing = client.get(f"{API}/contracts", headers=a).json()
        assert [c["name"] for c in listing["items"]] == ["Contract A own"]
        assert client.get(f"{API}/contracts/{deals.contract_a.id}", headers=a).status_code == 200
        r = client.get(f"{API}/contracts/{deals.contract_b.id}", headers=a)
        assert "FOREIGN" not in r.text and is_problem(r, 404)
        # Filtering by another customer gives nothing, never the other's contracts.
        other = client.get(f"{API}/contracts", headers=a, params={"customer_id": world.customer_b.id}).json()
        assert other["items"] == []
        policies = client.get(f"{API}/sla-policies", headers=a).json()
        assert [p["name"] for p in policies["items"]] == ["SLA A own"]
        assert client.get(f"{API}/sla-policies/{deals.policy_b.id}", headers=a).status_code == 404
        assert client.get(f"{API}/sla-policies/{deals.policy_a.id}", headers=a).status_code == 200

    def test_lessor_sees_no_contracts(self, client: TestClient, world, deals) -> None:
        x = world.headers("lessor_x")
        assert client.get(f"{API}/contracts", headers=x).json()["items"] == []
        assert client.get(f"{API}/sla-policies", headers=x).json()["items"] == []
        assert client.get(f"{API}/contracts/{deals.contract_a.id}", headers=x).status_code == 404

    @pytest.mark.parametrize("who", ["customer_a", "lessor_x"])
    def test_writes_are_for_staff(self, client: TestClient, world, deals, who: str) -> None:
        h, cid = world.headers(who), deals.contract_a.id
        for method, url, payload in (
            ("POST", f"{API}/contracts", body(world.customer_a.id)),
            ("PATCH", f"{API}/contracts/{cid}", {"name": "mine now"}),
            ("POST", f"{API}/contracts/{cid}/transitions", {"to": "signed"}),
            ("POST", f"{API}/sla-policies", {"name": "x", "target_pct": "99"}),
        ):
            r = client.request(method, url, headers=h, json=payload)
            assert "operator" in is_problem(r, 403)["detail"]
        got = client.get(f"{API}/contracts/{cid}", headers=world.headers("operator")).json()
        assert (got["name"], got["status"]) == ("Contract A own", "draft")


class TestSlaPolicies:
    def test_create_list_get(self, client: TestClient, world) -> None:
        op = world.headers("operator")
        policy = {
            "name": "EC2-like",
            "target_pct": "99.99",
            "credit_tiers": [
                {"below": "99.99", "credit_pct": "10"},
                {"below": "99.0", "credit_pct": "30"},
                {"below": "95.0", "credit_pct": "100"},
            ],
            "cap_pct": "100",
            "maintenance_allowance_hours": "4",
            "notice_hours": "72",
        }
        r = client.post(f"{API}/sla-policies", headers=op, json=policy)
        assert r.status_code == 201, r.text
        created = r.json()
        assert [t["credit_pct"] for t in created["credit_tiers"]] == ["10", "30", "100"]
        assert client.get(f"{API}/sla-policies/{created['id']}", headers=op).json()["target_pct"] == "99.9900"
        assert [p["name"] for p in client.get(f"{API}/sla-policies", headers=op).json()["items"]] == [
            "EC2-like"
        ]
        assert (
            "already exists"
            in is_problem(client.post(f"{API}/sla-policies", headers=op, json=policy), 409)["detail"]
        )

    BAD_TIERS = (
        (
            [{"below": "95", "credit_pct": "100"}, {"below": "99", "credit_pct": "10"}],
            "lower threshold than tier 1",
        ),
        (
            [{"below": "99", "credit_pct": "110"}],
            "credit_tiers.0.credit_pct: Input should be less than or equal",
        ),
        ([{"below": "99.95", "credit_pct": "10"}], "above the availability target 99.9%"),
        # The cap is stored with 2 decimals: more must be a 422, never a failed insert.
        ([], "cap_pct: Decimal input should have no more than 2 decimal places"),
    )

    def test_bad_tiers(self, client: TestClient, world) -> None:
        for tiers, fragment in self.BAD_TIERS:
            r = client.post(
                f"{API}/sla-policies",
                headers=world.headers("operator"),
                json={
                    "name": "bad",
                    "target_pct": "99.9",
                    "credit_tiers": tiers,
                    "cap_pct": "50.125" if not tiers else "50",
                },
            )
            assert fragment in is_problem(r, 422)["detail"], (tiers, r.json()["detail"])


class TestCustomerTaxId:
    def test_set_shown_and_cleared(self, client: TestClient, world) -> None:
        op = world.headers("operator")
        r = client.post(
            f"{API}/customers",
            headers=op,
            json={"name": "税号测试", "segment": "enterprise", "tax_id": "9111 0108 demx 0000 1p"},
        )
        assert r.status_code == 201, r.text
        customer = r.json()
        assert customer["tax_id"] == "91110108DEMX00001P"  # spaces dropped, upper-cased
        r = client.patch(f"{API}/customers/{customer['id']}", headers=op, json={"tax_id": None})
        assert r.status_code == 200 and r.json()["tax_id"] is None

    def test_a_typo_is_a_422_naming_the_check_character(self, client: TestClient, world) -> None:
        r = client.patch(
            f"{API}/customers/{world.customer_a.id}",
            headers=world.headers("operator"),
            json={"tax_id": "91110108DEMX00001Q"},
        )
        assert "the 18th should be P" in is_problem(r, 422)["detail"]
        again = client.get(f"{API}/customers/{world.customer_a.id}", headers=world.headers("operator"))
        assert again.json()["tax_id"] is None

