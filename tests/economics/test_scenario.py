"""Scenario files: the examples validate, and every bad field is named with its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from computelease.economics.plan import prepare
from computelease.economics.scenario import (
    ScenarioInvalid,
    load_scenario,
    parse_scenario,
    parse_yaml,
)
from computelease.errors import NotFound

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_validates(path: Path) -> None:
    scenario = load_scenario(path)
    plan = prepare(scenario)
    assert plan.lots and scenario.horizon_months == plan.T
    text = path.read_text(encoding="utf-8")
    # Each example names its sources: DOMAIN.md facts, and assumptions marked as such.
    assert "DOMAIN.md" in text and "ASSUMPTION" in text


def test_there_are_four_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {
        "lianhua_zixing",
        "qingyun_sale_leaseback",
        "kingsoft_direct_lease",
        "idle_centre",
    }


def test_lianhua_contract_converts_pflops_through_the_catalog() -> None:
    plan = prepare(load_scenario(Path(EXAMPLES[0]).parent / "lianhua_zixing.yaml"))
    assert plan.contract_gpus.max() == 1562  # 1545 PFLOPS BF16 dense / 989.4 TFLOPS, rounded up
    gross = sum(lot.gross for lot in plan.lots)
    assert 779_000_000 < gross < 781_000_000  # the article's ≈RMB 780M


def _set(data: dict, path: str, value: object) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        data = data[int(key)] if key.isdigit() else data[key]
    last = keys[-1]
    if value is _DELETE:
        del data[last]
    else:
        data[int(last) if last.isdigit() else last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "funding.bank.rate",
            6,
            "funding.bank.rate: must be a fraction like 0.06 (got 6; for 6% write 0.06)",
        ),
        ("fleet.0.count", 0, "fleet[0].count: must be at least 1, got 0"),
        ("fleet.0.count", 1.5, "fleet[0].count: must be a whole number, got 1.5"),
        ("fleet.0.site", "nowhere", "fleet[0].site: 'nowhere' is not a site; known: a"),
        ("fleet.0.sku", "nvidia-hgx-h999", "fleet[0].sku: no server SKU 'nvidia-hgx-h999' in the catalog"),
        ("fleet.0.cuont", 3, "fleet[0].cuont: is not a known field (check the spelling)"),
        ("fleet.0.date", "2024-12-01", "fleet[0].date: 2024-12-01 is outside the horizon"),
        ("fleet.0.date", "next week", "fleet[0].date: must be a date like 2025-03-01"),
        ("fleet.0.unit_price", "a lot", "fleet[0].unit_price: must be a number, got 'a lot'"),
        ("fleet.0.unit_price", -5, "fleet[0].unit_price: must not be negative, got -5"),
        ("fleet.0.currency", "usd", "fleet[0].currency: must be an ISO 4217 code like CNY or USD"),
        ("fleet.0.currency", "USD", "fleet[0].currency: no fx rate for USD; add fx.USD"),
        ("market.occupancy", _DELETE, "market.occupancy: is required"),
        (
            "market.occupancy",
            85,
            "market.occupancy: must be a fraction like 0.85 (got 85; for 85% write 0.85)",
        ),
        ("sites.0.pue", 0.9, "sites[0].pue: must be between 1 and 3"),
        ("start", "2025-01-15", "start: must be the first day of a month, e.g. 2025-01-01"),
        ("horizon_months", 0, "horizon_months: must be at least 1, got 0"),
        ("funding.use", "direct_lease", "funding.use: direct_lease has no terms; add funding.direct_lease"),
        (
            "funding.use",
            "leasing",
            "funding.use[0]: must be one of 'own', 'bank', 'direct_lease' or 'sale_leaseback'",
        ),
        (
            "funding.bank.months",
            13,
            "funding.bank.months: 13 months is not a whole number of quarterly periods",
        ),
        ("funding.bank.share", 0.5, "funding.bank: give exactly one of share, amount (got share, amount)"),
        ("accounting.depreciation.method", "sum_of_years", "accounting.depreciation.method: must be one of"),
        ("market.prices.0.accelerator", "nvidia-b200", "market.prices: no price for nvidia-h100-sxm"),
    ],
)
def test_bad_fields_are_named(one_node: dict, path: str, value: object, message: str) -> None:
    one_node["funding"]["bank"]["frequency"] = "quarterly"
    one_node["funding"]["bank"]["months"] = 12
    _set(one_node, path, value)
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(one_node, source="plan.yaml")
    detail = caught.value.detail
    assert detail.startswith("plan.yaml: ")
    assert message in detail, detail
    assert "\n" not in detail


def test_contract_problems(one_node: dict) -> None:
    one_node["contracts"] = [
        {
            "name": "x",
            "status": "pipeline",
            "accelerator": "nvidia-h100-sxm",
            "capacity": {"gpus": 8, "pflops": 10},
            "price": {"per_gpu_hour": 10},
            "start": "2025-02-01",
            "months": 6,
        },
        {
            "name": "y",
            "accelerator": "huawei-ascend-910b",
            "capacity": {"pflops": 100},
            "price": {"total": 1000},
            "start": "2025-02-01",
            "months": 6,
            "sla": [{"below": 0.99, "credit": 0.3}, {"below": 0.999, "credit": 0.1}],
        },
    ]
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(one_node)
    assert caught.value.problems == (
        "contracts[0].capacity: give exactly one of gpus, nodes, pflops (got gpus, pflops)",
    )
    del one_node["contracts"][0]["capacity"]["pflops"]
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(one_node)
    assert caught.value.problems == ("contracts[0]: a pipeline contract needs win_probability, e.g. 0.5",)
    # Once every field parses, the checks that need the catalog report all they find.
    one_node["contracts"][0]["win_probability"] = 0.5
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(one_node)
    detail = caught.value.detail
    assert "contracts[1].accelerator: the fleet holds no huawei-ascend-910b servers to deliver it" in detail
    assert "contracts[1].capacity: bf16 dense TFLOPS of huawei-ascend-910b is unknown" in detail
    assert "contracts[1].sla[1]: tiers go from the mildest to the worst" in detail


def test_several_problems_in_one_line(one_node: dict) -> None:
    one_node["discount_rate"] = 8
    one_node["fleet"][0]["site"] = "b"
    one_node["sites"][0]["pue"] = 5
    with pytest.raises(ScenarioInvalid) as caught:
        parse_scenario(one_node)
    # Field types first: the site check waits until every field parses.
    assert caught.value.problems == (
        "discount_rate: must be a fraction like 0.06 (got 8; for 8% write 0.08)",
        "sites[0].pue: must be between 1 and 3 (power usage effectiveness, e.g. 1.3), got 5",
    )


def test_amount_above_what_was_bought(one_node: dict) -> None:
    one_node["funding"]["bank"]["amount"] = 2_000_000
    with pytest.raises(ScenarioInvalid, match=r"funding.bank.amount: 2,000,000 is more than the 1,130,000"):
        prepare(parse_scenario(one_node))


def test_yaml_errors_say_where() -> None:
    with pytest.raises(ScenarioInvalid) as caught:
        parse_yaml("name: x\nfleet: [\n  - a\n", source="bad.yaml")
    assert caught.value.detail.startswith("bad.yaml: line ")
    with pytest.raises(ScenarioInvalid, match=r"line 3, column 3: duplicate key 'rate'"):
        parse_yaml("bank:\n  rate: 0.05\n  rate: 0.06\n")
    with pytest.raises(ScenarioInvalid, match="the document must be a mapping"):
        parse_scenario(["a", "list"])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_scenario(tmp_path / "nope.yaml")


def test_yaml_numbers_stay_exact(tmp_path: Path) -> None:
    text = (EXAMPLES[0].parent / "lianhua_zixing.yaml").read_text(encoding="utf-8")
    scenario = parse_scenario(parse_yaml(text))
    assert str(scenario.funding.bank.rate) == "0.045"  # not 0.04499999999999999833...


def test_route_needs_its_terms(one_node: dict) -> None:
    scenario = parse_scenario(one_node)
    assert scenario.with_route("own").funding.instruments == ()
    assert scenario.with_route("bank").funding.instruments == ("bank",)
    with pytest.raises(ScenarioInvalid, match=r"funding\.direct_lease: is missing"):
        scenario.with_route("direct_lease")
