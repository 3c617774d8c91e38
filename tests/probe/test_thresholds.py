"""The shipped thresholds file: complete, justified, tied to the catalog, and calibrated so that the
measured H100 SXM figures of DOMAIN.md pass and the old-stack 519 TFLOPS does not."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from computelease.probe.core import (
    METRICS,
    THROTTLE_BITS,
    ThresholdsInvalid,
    parse_thresholds,
    rating_tflops,
)


def shipped() -> dict:
    text = (resources.files("computelease.probe") / "data" / "thresholds.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_default_covers_every_metric_and_every_threshold_is_justified(thresholds) -> None:
    assert set(thresholds.default) == set(METRICS)
    specs = list(thresholds.specs())
    assert len(specs) > len(METRICS)
    for spec in specs:
        assert len(spec.why.split()) >= 15, f"{spec.source}.{spec.metric}: justify the threshold"
    assert len(thresholds.default_throttle.why.split()) >= 15


def test_sections_are_catalog_accelerators(catalog) -> None:
    ids = {a.id for a in catalog.accelerators}
    assert set(shipped()) - {"default"} <= ids
    assert {"nvidia-h100-sxm", "nvidia-h800-sxm"} <= set(shipped())


def test_h100_sxm_levels_are_those_of_the_issue(thresholds, catalog) -> None:
    bf16 = thresholds.spec("nvidia-h100-sxm", "gemm_bf16")
    assert (bf16.basis, bf16.pass_at, bf16.warn_at) == ("peak", 0.75, 0.60)
    h100 = catalog.accelerator("nvidia-h100-sxm")
    assert rating_tflops(bf16, h100) == pytest.approx(742.05)
    copy = thresholds.spec("nvidia-h100-sxm", "device_copy")
    assert (copy.basis, copy.pass_at) == ("absolute", 2800.0)
    assert thresholds.spec("nvidia-h100-sxm", "matmul_consistency").pass_at == 0.05
    # A SKU without a section, and an unknown card, fall back to the default.
    assert thresholds.spec("nvidia-l20", "gemm_bf16").source == "default"
    assert thresholds.spec(None, "device_copy").source == "default"


@pytest.mark.parametrize(
    ("metric", "measured", "passes"),
    [
        ("gemm_bf16", 789, True),
        ("gemm_bf16", 798, True),
        ("gemm_bf16", 519, False),
        ("gemm_fp16", 757, True),
        ("gemm_tf32", 381, True),
        ("gemm_fp8", 1417, True),
        ("device_copy", 3000, True),
    ],
)
def test_calibration_against_the_measured_h100(metric, measured, passes, thresholds, catalog) -> None:
    spec = thresholds.spec("nvidia-h100-sxm", metric)
    h100 = catalog.accelerator("nvidia-h100-sxm")
    level = spec.pass_at if spec.basis == "absolute" else spec.pass_at * float(h100.tflops(metric[5:]).value)
    assert (measured >= level) is passes
    if passes:
        # Not so tight that an ordinary healthy card misses it: at least 5% of margin.
        assert measured >= level * 1.05


def test_the_h800_shares_the_h100_calibration(thresholds) -> None:
    for metric in ("gemm_bf16", "gemm_fp16", "gemm_tf32", "gemm_fp8", "device_copy"):
        h100, h800 = thresholds.spec("nvidia-h100-sxm", metric), thresholds.spec("nvidia-h800-sxm", metric)
        assert (h100.basis, h100.pass_at, h100.warn_at) == (h800.basis, h800.pass_at, h800.warn_at)


def test_throttle_rule_names_known_reasons(thresholds) -> None:
    rule = thresholds.throttle("nvidia-h100-sxm")
    assert rule.fail <= set(THROTTLE_BITS.values()) and rule.warn <= set(THROTTLE_BITS.values())
    assert "sw_power_cap" not in rule.fail | rule.warn  # normal at full load
    assert "hw_slowdown" in rule.fail


def test_every_problem_is_reported_at_once(catalog) -> None:
    data = shipped()
    data["default"]["gemm_bf16"] = {"basis": "peak", "pass": 0.5, "warn": 0.6, "why": "too short"}
    data["default"]["sdc_bf16"] = {
        "basis": "peak",
        "pass": 8,
        "warn": 8,
        "why": "a long enough reason for this",
    }
    data["default"]["gemm_int4"] = {
        "basis": "peak",
        "pass": 0.5,
        "warn": 0.4,
        "why": "a long enough reason here",
    }
    data["default"]["throttle"]["fail"] = ["hw_slowdown", "melting"]
    data["acme-x1"] = {}
    with pytest.raises(ThresholdsInvalid) as caught:
        parse_thresholds(data, [a.id for a in catalog.accelerators])
    text = str(caught.value)
    for words in (
        "[default.gemm_bf16]: warn 0.6 is above pass 0.5",
        "[default.gemm_bf16]: every threshold needs a justification",
        "[default.sdc_bf16]: sdc_bf16 has no catalog figure",
        "[default.gemm_int4]: unknown metric",
        "unknown reasons melting",
        "[acme-x1]: not an accelerator id in the catalog",
    ):
        assert words in text, words


def test_a_default_section_is_required_and_complete() -> None:
    with pytest.raises(ThresholdsInvalid, match="a \\[default\\] section is required"):
        parse_thresholds({})
    data = shipped()
    del data["default"]["device_copy"]
    with pytest.raises(ThresholdsInvalid, match="missing thresholds for device_copy"):
        parse_thresholds(data)


def test_lower_is_better_metrics_need_warn_at_or_above_pass() -> None:
    data = shipped()
    data["default"]["matmul_consistency"] = {
        "basis": "absolute",
        "pass": 0.10,
        "warn": 0.05,
        "why": "reversed levels for a lower-is-better metric",
    }
    with pytest.raises(ThresholdsInvalid, match=r"warn 0\.05 is below pass 0\.1"):
        parse_thresholds(data)
