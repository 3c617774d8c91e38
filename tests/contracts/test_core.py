"""Pure contract rules: term length, UTC bounds, total contract value, compatibility, transitions, SLA
policies. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from computelease.contracts import core as c
from computelease.contracts.core import ContractStatus as S

H100 = "nvidia-h100-sxm"


def price(pricing: str, amount: str, om: str = "0") -> c.PriceTerms:
    return c.PriceTerms(c.Pricing(pricing), Decimal(amount), Decimal(om))


def terms(**overrides: object) -> c.Terms:
    base: dict[str, object] = {
        "capacity": c.Capacity(c.CapacityUnit.gpus, Decimal("8")),
        "requirement": c.AcceleratorRequirement(model=H100),
        "placement": c.Placement.any,
        "start": date(2026, 1, 1),
        "end": date(2026, 12, 31),
        "price": price("monthly_fee", "70000.00"),
    }
    base.update(overrides)
    return c.Terms(**base)  # type: ignore[arg-type]


class TestTermLength:
    @pytest.mark.parametrize(
        ("start", "end", "whole", "extra", "of"),
        [
            (date(2025, 3, 1), date(2030, 2, 28), 60, 0, 31),  # five years from the 1st
            (date(2025, 1, 15), date(2026, 1, 14), 12, 0, 31),  # anniversaries, not calendar months
            (date(2025, 1, 15), date(2025, 3, 10), 1, 24, 28),  # Feb 15 → Mar 15 is a 28-day month
            (date(2025, 1, 31), date(2025, 2, 27), 1, 0, 31),  # Jan 31 + 1 month clamps to Feb 28
            (date(2024, 2, 1), date(2024, 2, 29), 1, 0, 31),  # leap February is a whole month
            (date(2025, 1, 1), date(2025, 1, 1), 0, 1, 31),  # one day
            (date(2024, 1, 31), date(2024, 3, 30), 2, 0, 30),  # Mar 31 anchor stays on the 31st
        ],
    )
    def test_golden(self, start: date, end: date, whole: int, extra: int, of: int) -> None:
        assert c.term_length(start, end) == c.TermLength(whole, extra, of)

    def test_dates_out_of_range_are_refused(self) -> None:
        with pytest.raises(
            c.ContractInvalid, match=r"end date 9999-12-31 is outside 1990-01-01\.\.2199-12-31"
        ):
            c.term_bounds(date(2025, 1, 1), date(9999, 12, 31))

    def test_end_before_start_is_refused(self) -> None:
        with pytest.raises(c.ContractInvalid, match="end date 2025-01-01 is before start date 2025-02-01"):
            c.term_length(date(2025, 2, 1), date(2025, 1, 1))

    @given(st.dates(date(2000, 1, 1), date(2090, 12, 31)), st.integers(1, 240))
    def test_the_day_before_an_anniversary_ends_whole_months(self, start: date, n: int) -> None:
        end = c.add_months(start, n) - timedelta(days=1)
        assert c.term_length(start, end).months == n

    @given(st.dates(date(2000, 1, 1), date(2090, 12, 31)), st.integers(0, 4000))
    def test_one_more_day_always_adds_less_than_a_month(self, start: date, days: int) -> None:
        end = start + timedelta(days=days)
        shorter, longer = c.term_length(start, end), c.term_length(start, end + timedelta(days=1))
        assert 0 < longer.months - shorter.months <= Fraction(1, 28)
        assert 0 <= shorter.extra_days < shorter.days_in_partial_month


class TestTermBounds:
    def test_shanghai_midnights_in_utc(self) -> None:
        first, last = c.term_bounds(date(2025, 3, 1), date(2030, 2, 28))
        assert first == datetime(2025, 2, 28, 16, tzinfo=UTC)
        assert last == datetime(2030, 2, 28, 16, tzinfo=UTC)

    def test_daylight_saving_shortens_the_term(self) -> None:
        # March 2025 in New York loses an hour on the 9th.
        assert c.term_hours(date(2025, 3, 1), date(2025, 3, 31), "America/New_York") == 743
        assert c.term_hours(date(2025, 3, 1), date(2025, 3, 31), "UTC") == 744

    @pytest.mark.parametrize("tz", ["Mars/Olympus", "America", "", "../etc/passwd"])
    def test_unknown_zone(self, tz: str) -> None:
        with pytest.raises(c.ContractInvalid, match="not an IANA name"):
            c.term_bounds(date(2025, 1, 1), date(2025, 1, 2), tz)


class TestContractValue:
    """Golden cases: inputs and the value to the fen, worked by hand in the comments."""

    def test_the_article_contract(self) -> None:
        # 莲花紫星: 1545 PFLOPS BF16 + O&M for ¥555M; over 60 months at ¥5,000/PFLOPS-month + ¥1,525,000 O&M.
        value = c.contract_value(
            price("per_pflops_month", "5000", "1525000"),
            date(2025, 3, 1),
            date(2030, 2, 28),
            quantity=c.BillableQuantity(gpus=1562, pflops=Decimal("1545")),
        )
        assert (value.compute, value.om, value.total) == (
            Decimal("463500000.00"),
            Decimal("91500000.00"),
            Decimal("555000000.00"),
        )

    def test_the_demo_flagship_is_a_tenth(self) -> None:
        e = c.evaluate(
            terms(
                capacity=c.Capacity(c.CapacityUnit.pflops, Decimal("154.5"), "bf16"),
                start=date(2025, 3, 1),
                end=date(2030, 2, 28),
                price=price("per_pflops_month", "5000.0000", "152500.00"),
            )
        )
        assert e.value.total == Decimal("55500000.00")
        # Billed on the contracted 154.5 PFLOPS, not on what 157 whole GPUs happen to deliver.
        assert e.quantity == c.BillableQuantity(gpus=157, pflops=Decimal("154.5"))

    def test_partial_month_prorated_by_days(self) -> None:
        # 1 + 24/28 months × ¥100,000 = ¥185,714.2857… → ¥185,714.29
        value = c.contract_value(price("monthly_fee", "100000.00"), date(2025, 1, 15), date(2025, 3, 10))
        assert value.months == Fraction(13, 7)
        assert value.total == Decimal("185714.29")

    def test_per_gpu_hour_counts_real_hours(self) -> None:
        q = c.BillableQuantity(gpus=64, pflops=None)
        jan = c.contract_value(price("per_gpu_hour", "2.35"), date(2025, 1, 1), date(2025, 1, 31), quantity=q)
        assert jan.total == Decimal("111897.60")  # 2.35 × 64 × 744
        ny = c.contract_value(
            price("per_gpu_hour", "2.35"),
            date(2025, 3, 1),
            date(2025, 3, 31),
            tz="America/New_York",
            quantity=q,
        )
        assert ny.total == Decimal("111747.20")  # 2.35 × 64 × 743
        leap = c.contract_value(
            price("per_gpu_hour", "2.3456"), date(2024, 2, 1), date(2024, 2, 29), quantity=q
        )
        assert leap.total == Decimal("104482.41")  # 2.3456 × 64 × 696 = 104,482.4064

    def test_om_is_prorated_like_the_fee(self) -> None:
        # 12 months + 10/31 of ¥31,000.00 O&M = ¥372,000 + ¥10,000
        value = c.contract_value(price("monthly_fee", "0", "31000"), date(2025, 1, 1), date(2026, 1, 10))
        assert value.om == Decimal("382000.00") and value.compute == Decimal("0.00")

    def test_half_fen_rounds_up(self) -> None:
        assert c.fen(Fraction(5, 1000)) == Decimal("0.01")
        assert c.fen(Fraction(4999, 1000000)) == Decimal("0.00")
        assert c.fen(Fraction(1234565, 1000)) == Decimal("1234.57")

    @given(
        st.dates(date(2020, 1, 1), date(2040, 12, 31)),
        st.integers(0, 2000),
        st.integers(1, 4096),
        st.decimals(Decimal("0"), Decimal("99.9999"), places=4),
    )
    def test_gpu_hours_in_utc_are_days_times_24(
        self, start: date, days: int, gpus: int, rate: Decimal
    ) -> None:
        end = start + timedelta(days=days)
        value = c.contract_value(
            price("per_gpu_hour", str(rate)), start, end, tz="UTC", quantity=c.BillableQuantity(gpus, None)
        )
        assert value.total == (rate * gpus * 24 * (days + 1)).quantize(
            Decimal("0.01"), rounding="ROUND_HALF_UP"
        )

    @given(st.dates(date(2020, 1, 1), date(2040, 12, 31)), st.integers(1, 120), st.integers(0, 10**9))
    def test_whole_months_of_a_monthly_fee_are_exact(self, start: date, n: int, fee_fen: int) -> None:
        fee = Decimal(fee_fen).scaleb(-2)
        end = c.add_months(start, n) - timedelta(days=1)
        assert c.contract_value(price("monthly_fee", str(fee)), start, end).total == fee * n

    def test_month_fee_follows_the_months_hours(self) -> None:
        q = c.BillableQuantity(gpus=8, pflops=None)
        feb = c.month_fee(price("per_gpu_hour", "10", "100"), "2026-02", quantity=q)
        mar = c.month_fee(price("per_gpu_hour", "10", "100"), "2026-03", quantity=q)
        assert (feb, mar) == (Decimal("53860.00"), Decimal("59620.00"))  # 8×10×672+100, 8×10×744+100
        with pytest.raises(c.ContractInvalid, match="YYYY-MM"):
            c.month_fee(price("monthly_fee", "1"), "2026-13")


class TestCapacity:
    def test_the_article_capacity_in_h100s(self) -> None:
        conv = c.convert_capacity(c.Capacity(c.CapacityUnit.pflops, Decimal("1545"), "bf16"), H100)
        assert (conv.gpus, conv.nodes) == (1562, 196)

    @pytest.mark.parametrize(
        ("unit", "value", "precision", "message"),
        [
            ("gpus", "1.5", None, "whole number"),
            ("nodes", "0", None, "positive"),
            ("pflops", "-1", "bf16", "positive"),
            ("pflops", "10", None, "needs a precision"),
            ("pflops", "10", "bf17", "needs a precision"),
            ("gpus", "1000000000", None, "beyond any real contract"),
        ],
    )
    def test_bad_capacity(self, unit: str, value: str, precision: str | None, message: str) -> None:
        with pytest.raises(c.ContractInvalid, match=message):
            c.Capacity(c.CapacityUnit(unit), Decimal(value), precision)

    def test_precision_only_for_pflops(self) -> None:
        assert c.Capacity(c.CapacityUnit.gpus, Decimal("8"), "bf16").precision is None


class TestCompatibility:
    def test_minimum_spec_gives_the_models_that_meet_it(self) -> None:
        spec = c.AcceleratorRequirement(min_memory_gb=Decimal("80"), min_tflops=Decimal("900"))
        assert c.meets_spec(spec) == (
            "nvidia-b200",
            "nvidia-gb200",
            "nvidia-h100-sxm",
            "nvidia-h200-sxm",
            "nvidia-h800-sxm",
        )
        # H20 has 96 GB but only 148 TFLOPS BF16; memory alone lets it in.
        assert "nvidia-h20" in c.meets_spec(c.AcceleratorRequirement(min_memory_gb=Decimal("96")))
        assert "nvidia-h100-sxm" not in c.meets_spec(c.AcceleratorRequirement(min_memory_gb=Decimal("96")))

    def test_unknown_figures_never_qualify(self) -> None:
        # Ascend 910B's FP16 is a disputed range, so no FP16 minimum can admit it.
        spec = c.AcceleratorRequirement(min_tflops=Decimal("1"), min_tflops_precision="fp16")
        assert "huawei-ascend-910b" not in c.meets_spec(spec)
        assert "nvidia-a100-sxm" in c.meets_spec(spec)

    def test_nodes_need_a_sku_and_pflops_a_figure(self) -> None:
        spec = c.AcceleratorRequirement(min_memory_gb=Decimal("64"))
        by_nodes = c.compatible_models(spec, c.Capacity(c.CapacityUnit.nodes, Decimal("2")))
        assert "nvidia-gb200" not in by_nodes and by_nodes["nvidia-h100-sxm"].gpus == 16
        by_pflops = c.compatible_models(spec, c.Capacity(c.CapacityUnit.pflops, Decimal("10"), "bf16"))
        assert "huawei-ascend-910b" not in by_pflops and by_pflops[H100].gpus == 11

    def test_named_model_that_cannot_be_sized_says_which_figure(self) -> None:
        capacity = c.Capacity(c.CapacityUnit.pflops, Decimal("100"), "fp16")
        with pytest.raises(
            c.ContractInvalid, match="fp16 dense TFLOPS of huawei-ascend-910b is unknown"
        ) as exc:
            c.compatible_models(c.AcceleratorRequirement(model="huawei-ascend-910b"), capacity)
        assert exc.value.status == 422

    def test_unknown_model_is_422_not_404(self) -> None:
        with pytest.raises(c.ContractInvalid, match=r"no accelerator 'nvidia-h900'.*known ids") as exc:
            c.meets_spec(c.AcceleratorRequirement(model="nvidia-h900"))
        assert exc.value.status == 422

    def test_nothing_meets_an_impossible_spec(self) -> None:
        spec = c.AcceleratorRequirement(min_memory_gb=Decimal("100000"))
        with pytest.raises(c.ContractInvalid, match="no catalog accelerator meets ≥ 100000 GB"):
            c.compatible_models(spec, c.Capacity(c.CapacityUnit.gpus, Decimal("8")))

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({}, "say which accelerators"),
            ({"model": H100, "min_memory_gb": Decimal("80")}, "not both"),
            ({"min_tflops": Decimal("0")}, "positive"),
            ({"min_tflops": Decimal("1"), "min_tflops_precision": "fp4"}, "min_tflops_precision"),
        ],
    )
    def test_bad_requirement(self, kwargs: dict, message: str) -> None:
        with pytest.raises(c.ContractInvalid, match=message):
            c.AcceleratorRequirement(**kwargs)


class TestBillableQuantity:
    spec = c.AcceleratorRequirement(min_memory_gb=Decimal("80"), min_tflops=Decimal("900"))

    def test_pflops_price_on_gpus_of_mixed_models_is_ambiguous(self) -> None:
        with pytest.raises(
            c.ContractInvalid, match=r"price per PFLOPS-month needs the PFLOPS.*on nvidia-b200"
        ):
            c.evaluate(
                terms(
                    capacity=c.Capacity(c.CapacityUnit.gpus, Decimal("64")),
                    requirement=self.spec,
                    price=price("per_pflops_month", "5000"),
                )
            )

    def test_gpu_hour_price_on_pflops_of_mixed_models_is_ambiguous(self) -> None:
        with pytest.raises(c.ContractInvalid, match="price per GPU-hour needs one GPU count"):
            c.evaluate(
                terms(
                    capacity=c.Capacity(c.CapacityUnit.pflops, Decimal("100"), "bf16"),
                    requirement=self.spec,
                    price=price("per_gpu_hour", "2.35"),
                )
            )

    def test_gpus_are_the_same_on_every_model(self) -> None:
        e = c.evaluate(terms(capacity=c.Capacity(c.CapacityUnit.gpus, Decimal("64")), requirement=self.spec))
        assert e.quantity.gpus == 64 and e.quantity.pflops is None
        assert e.models == ("nvidia-b200", "nvidia-gb200", H100, "nvidia-h200-sxm", "nvidia-h800-sxm")

    def test_pflops_of_one_model(self) -> None:
        e = c.evaluate(
            terms(
                capacity=c.Capacity(c.CapacityUnit.gpus, Decimal("8")), price=price("per_pflops_month", "1")
            )
        )
        assert e.quantity.pflops == Decimal("7.9152")  # 8 × 989.4 / 1000


class TestPriceTerms:
    @pytest.mark.parametrize(
        ("pricing", "amount", "om", "message"),
        [
            ("monthly_fee", "70000.001", "0", "at most 2 decimal places"),
            ("per_gpu_hour", "-1", "0", "must not be negative"),
            ("per_gpu_hour", "1", "0.001", "om_monthly_fee has more than 2"),
        ],
    )
    def test_bad_prices(self, pricing: str, amount: str, om: str, message: str) -> None:
        with pytest.raises(c.ContractInvalid, match=message):
            price(pricing, amount, om)

    def test_floats_are_refused(self) -> None:
        with pytest.raises(c.ContractInvalid, match="Decimal"):
            c.PriceTerms(c.Pricing.per_gpu_hour, 2.35)  # type: ignore[arg-type]

    def test_absurd_value_is_refused_before_it_overflows_a_column(self) -> None:
        with pytest.raises(c.ContractInvalid, match=r"total contract value .* is beyond any real contract"):
            c.evaluate(
                terms(
                    capacity=c.Capacity(c.CapacityUnit.gpus, Decimal("100000000")),
                    price=price("per_gpu_hour", "99999"),
                )
            )

    def test_unit_prices_keep_four_decimals(self) -> None:
        assert price("per_gpu_hour", "2.3456").price == Decimal("2.3456")


class TestTransitions:
    @pytest.mark.parametrize("current", list(S))
    @pytest.mark.parametrize("requested", list(S))
    def test_every_pair(self, current: S, requested: S) -> None:
        legal = {
            (S.draft, S.signed),
            (S.signed, S.active),
            (S.signed, S.terminated),
            (S.active, S.ended),
            (S.active, S.terminated),
        }
        if (current, requested) in legal:
            assert c.check_transition(current, requested) is requested
            return
        with pytest.raises(c.IllegalTransition) as exc:
            c.check_transition(current, requested)
        problem = exc.value.problem()
        assert problem["status"] == 409
        assert problem["current"] == current.value and problem["requested"] == requested.value
        assert problem["allowed"] == [s.value for s in c.TRANSITIONS[current]]
        assert f"a {current.value} contract cannot become {requested.value}" in problem["detail"]


EC2 = (
    {"below": "99.99", "credit_pct": "10"},
    {"below": "99.0", "credit_pct": "30"},
    {"below": "95.0", "credit_pct": "100"},
)


class TestSlaPolicy:
    def test_the_ec2_tiers(self) -> None:
        tiers = c.validate_sla_policy(Decimal("99.99"), list(EC2), Decimal("100"))
        assert [t.to_dict() for t in tiers] == list(EC2)
        assert c.credit_pct_for(Decimal("99.995"), tiers) == 0
        assert c.credit_pct_for(Decimal("99.5"), tiers) == 10
        assert c.credit_pct_for(Decimal("98.999"), tiers) == 30
        assert c.credit_pct_for(Decimal("12"), tiers) == 100

    @pytest.mark.parametrize(
        ("target", "tiers", "cap", "message"),
        [
            ("99.99", list(reversed(EC2)), "100", "must have a lower threshold than tier 1"),
            ("99.99", [EC2[0], {"below": "99.0", "credit_pct": "10"}], "100", "not more than tier 1"),
            ("99.9", EC2, "100", "tier 1 starts below 99.99%, above the availability target 99.9%"),
            (
                "99.9",
                [{"below": "99.9", "credit_pct": "101"}],
                "100",
                "tier 1 credit_pct must be a percentage",
            ),
            ("100.5", [], "100", "availability target must be a percentage"),
            ("99.9", [], "150", "credit cap must be a percentage"),
            ("99.9", [{"below": "99"}], "100", "must look like"),
            ("99.9", [{"below": 99.0, "credit_pct": "1"}], "100", "decimal written as text"),
        ],
    )
    def test_bad_policies(self, target: str, tiers: list, cap: str, message: str) -> None:
        with pytest.raises(c.SlaPolicyInvalid, match=message):
            c.validate_sla_policy(Decimal(target), tiers, Decimal(cap))


# ----------------------------------------------------------------------------------- buyer tax id


def test_uscc_check_character_worked_by_hand() -> None:
    """91110108DEMX0000 1 → values 9 1 1 1 0 1 0 8 13(D) 14(E) 21(M) 29(X) 0 0 0 0 1, weights 3ⁱ mod 31
    = 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28: Σ = 9+3+9+27+0+26+0+136+260+406+525+377+28 = 1806;
    1806 mod 31 = 8; 31 − 8 = 23 → P."""
    assert c.uscc_check_char("91110108DEMX00001") == "P"
    assert c.validate_tax_id("9111 0108 demx 0000 1p") == "91110108DEMX00001P"


USCC_BODY = st.text(alphabet=c.USCC_CHARS, min_size=17, max_size=17)


@given(USCC_BODY, st.integers(0, 17), st.sampled_from(c.USCC_CHARS))
def test_any_single_character_typo_is_caught(body: str, at: int, other: str) -> None:
    code = body + c.uscc_check_char(body)
    assert c.validate_tax_id(code) == code
    typo = code[:at] + other + code[at + 1 :]
    if typo != code:
        with pytest.raises(ValueError, match="check character"):
            c.validate_tax_id(typo)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("91110108DEMX0000IP", "has no I"),
        ("12345", "has 5"),
        ("91110108DEMX00001Q", "the 18th should be P"),
        ("统一社会信用代码一二三四五六七八九十", "has no"),
    ],
)
def test_bad_tax_ids_say_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        c.validate_tax_id(value)


def test_older_15_and_20_character_ids_pass_unchanged() -> None:
    assert c.validate_tax_id("110108123456789") == "110108123456789"
    assert c.validate_tax_id("11010812345678901X".ljust(20, "0")) == "11010812345678901X00"
