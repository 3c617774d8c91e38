"""Verdict logic on fake timings: figures, thresholds per SKU, the consistency check, SLA share."""

from __future__ import annotations

import pytest

from computelease.probe.core import (
    SDC_ROUNDOFF,
    SETTINGS,
    ThresholdSpec,
    consistency,
    copy_gbs,
    gemm_tflops,
    judge,
    model_for,
    throttle_names,
)
from computelease.probe.runner import run_probe
from computelease.probe.schemas import EXIT_CODES, ProbeReport, Verdict, worst


def probe(backend, catalog, thresholds, clock, mode="standard") -> ProbeReport:
    return run_probe(backend, mode=mode, catalog=catalog, thresholds=thresholds, node="SN-1", now=clock)


def check(report: ProbeReport, name: str, gpu: int = 0):
    return next(c for c in report.gpus[gpu].checks if c.name == name)


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("NVIDIA H100 80GB HBM3", "nvidia-h100-sxm"),
        ("NVIDIA H100 SXM5 80GB", "nvidia-h100-sxm"),
        ("NVIDIA H100 PCIe", "nvidia-h100-pcie"),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA H800", "nvidia-h800-sxm"),
        ("NVIDIA H800 80GB HBM3", "nvidia-h800-sxm"),
        ("NVIDIA H800 PCIe", None),
        ("NVIDIA H20", "nvidia-h20"),
        ("NVIDIA H20-3e", None),
        ("NVIDIA H200", "nvidia-h200-sxm"),
        ("NVIDIA H200 NVL", None),
        ("NVIDIA A100-SXM4-80GB", "nvidia-a100-sxm"),
        ("NVIDIA A100-SXM4-40GB", None),
        ("NVIDIA A100 80GB PCIe", None),
        ("NVIDIA A800-SXM4-80GB", "nvidia-a800-sxm"),
        ("NVIDIA L40S", "nvidia-l40s"),
        ("NVIDIA L40", None),
        ("NVIDIA L20", "nvidia-l20"),
        ("NVIDIA B200", "nvidia-b200"),
        ("NVIDIA GB200", "nvidia-gb200"),
        ("NVIDIA GeForce RTX 4090", None),
    ],
)
def test_card_names_map_to_catalog_ids(name, model, catalog) -> None:
    assert model_for(name) == model
    if model is not None:
        catalog.accelerator(model)  # every target exists in the shipped catalog


def test_figures_from_timings() -> None:
    assert gemm_tflops(8192, 2 * 8192**3 / 789e12) == pytest.approx(789)
    # A copy reads and writes every byte: 2 GiB in 1.4316 ms is 3.0 TB/s counted both ways.
    assert copy_gbs("device_copy", 2**31, 2 * 2**31 / 3000e9) == pytest.approx(3000)
    assert copy_gbs("host_to_device", 2**30, 2**30 / 50e9) == pytest.approx(50)
    assert SDC_ROUNDOFF["bf16"] == (2**-8, 2**-24) and SDC_ROUNDOFF["tf32"] == (2**-24, 2**-24)


def test_measured_h100_passes_everything(node, catalog, thresholds, clock) -> None:
    report = probe(node(8), catalog, thresholds, clock)
    assert report.verdict is Verdict.PASS and report.exit_code == 0
    gpu = report.gpus[0]
    assert gpu.model == "nvidia-h100-sxm"
    bf16 = next(g for g in gpu.gemm if g.precision == "bf16")
    assert bf16.tflops == pytest.approx(789, abs=0.01) and bf16.share_of_peak == pytest.approx(
        789 / 989.4, abs=1e-4
    )
    assert bf16.min_ms < bf16.median_ms < bf16.max_ms and bf16.n == 8192
    assert [c.verdict for c in gpu.checks if c.verdict is not Verdict.PASS] == []
    assert report.checks[0].name == "cross_gpu_bitwise" and report.checks[0].verdict is Verdict.PASS
    # SLA: measured over the calibrated rating, the bf16 pass level 0.75 × 989.4 = 742.05.
    assert gpu.rating_tflops == pytest.approx(742.05) and gpu.sla_share == pytest.approx(
        789 / 742.05, abs=1e-4
    )


@pytest.mark.parametrize(
    ("bf16", "verdict"),
    [
        (742.05, Verdict.PASS),  # exactly the pass level: 75% of 989.4
        (742.0, Verdict.WARN),
        (593.64, Verdict.WARN),  # exactly the warn level: 60%
        (593.6, Verdict.FAIL),
        (519.0, Verdict.FAIL),  # the old CUDA stack of DOMAIN.md
    ],
)
def test_bf16_verdict_at_the_h100_levels(bf16, verdict, node, catalog, thresholds, clock) -> None:
    report = probe(
        node(1, tflops={**_h100(), "bf16": bf16}, reference_tflops=bf16), catalog, thresholds, clock
    )
    c = check(report, "gemm_bf16")
    assert c.verdict is verdict, c.detail
    assert c.threshold.source == "nvidia-h100-sxm" and c.threshold.pass_value == pytest.approx(742.05)
    assert report.verdict is verdict and report.exit_code == EXIT_CODES[verdict]


def _h100() -> dict[str, float]:
    return {"bf16": 789.0, "fp16": 757.0, "tf32": 381.0, "fp8": 1417.0}


@pytest.mark.parametrize(
    ("probe_tflops", "plain_tflops", "verdict"),
    [
        (789.0, 789.0, Verdict.PASS),
        (789.0, 760.0, Verdict.PASS),  # 3.8% apart
        (789.0, 751.43, Verdict.PASS),  # 5.0% apart: the limit, inclusive
        (789.0, 745.0, Verdict.WARN),  # 5.9%
        (789.0, 869.0, Verdict.WARN),  # 9.2%, the plain matmul faster
        (789.0, 700.0, Verdict.FAIL),  # 12.7%: one of the timings is wrong
    ],
)
def test_bf16_must_agree_with_a_plain_matmul_within_5_percent(
    probe_tflops, plain_tflops, verdict, node, catalog, thresholds, clock
) -> None:
    backend = node(1, tflops={**_h100(), "bf16": probe_tflops}, reference_tflops=plain_tflops)
    report = probe(backend, catalog, thresholds, clock)
    c = check(report, "matmul_consistency")
    assert c.verdict is verdict, c.detail
    assert c.value == pytest.approx(abs(probe_tflops - plain_tflops) / plain_tflops, abs=1e-4)
    assert report.gpus[0].matmul_reference.tflops == pytest.approx(plain_tflops, abs=0.01)


def test_consistency_is_relative_to_the_plain_matmul() -> None:
    assert consistency(789, 789) == 0
    assert consistency(800, 760) == pytest.approx(40 / 760)
    assert consistency(760, 800) == pytest.approx(40 / 800)
    with pytest.raises(ValueError):
        consistency(789, 0)


def test_device_copy_h100_threshold_is_absolute(node, catalog, thresholds, clock) -> None:
    for gbs, verdict in (
        (3000, Verdict.PASS),
        (2800, Verdict.PASS),
        (2799.9, Verdict.WARN),
        (2300, Verdict.FAIL),
    ):
        backend = node(1, gbs={"device_copy": gbs, "host_to_device": 52, "device_to_host": 50})
        c = check(probe(backend, catalog, thresholds, clock), "device_copy")
        assert c.verdict is verdict, (gbs, c.detail)
        assert c.threshold.basis == "absolute" and c.threshold.pass_value == 2800
        assert c.share == pytest.approx(gbs / 3350, abs=1e-4)  # share of the datasheet 3,350 GB/s


def test_other_sku_uses_defaults_against_its_own_peak(node, catalog, thresholds, clock) -> None:
    # An A100 SXM 80GB at 250 TFLOPS bf16 = 80% of 312: default pass is 70%. No FP8 on compute 8.0.
    backend = node(
        2,
        name="NVIDIA A100-SXM4-80GB",
        capability=(8, 0),
        tflops={"bf16": 250.0, "fp16": 250.0, "tf32": 120.0, "fp8": 0.0},
        gbs={"device_copy": 1700.0, "host_to_device": 24.0, "device_to_host": 24.0},
    )
    report = probe(backend, catalog, thresholds, clock)
    gpu = report.gpus[0]
    assert gpu.model == "nvidia-a100-sxm"
    bf16 = check(report, "gemm_bf16")
    assert bf16.verdict is Verdict.PASS and bf16.threshold.source == "default"
    assert bf16.threshold.pass_value == pytest.approx(0.70 * 312)
    assert check(report, "gemm_fp8").verdict is Verdict.SKIP and "8.9" in check(report, "gemm_fp8").detail
    assert check(report, "sdc_fp8").verdict is Verdict.SKIP
    assert "gemm_fp8" not in backend.fake_gpus[0].calls and "sdc_fp8" not in backend.fake_gpus[0].calls
    # 1,700 GB/s = 83% of 2,039: default passes at 75%.
    assert check(report, "device_copy").verdict is Verdict.PASS
    assert report.verdict is Verdict.PASS
    assert gpu.rating_tflops == pytest.approx(218.4) and gpu.sla_share == pytest.approx(250 / 218.4, abs=1e-4)


def test_unknown_card_is_reported_without_ratio_and_warns(node, catalog, thresholds, clock) -> None:
    report = probe(node(1, name="NVIDIA H100 NVL"), catalog, thresholds, clock)
    gpu = report.gpus[0]
    assert gpu.model is None and gpu.verdict is Verdict.WARN and report.exit_code == 1
    bf16 = check(report, "gemm_bf16")
    assert bf16.verdict is Verdict.WARN and bf16.share is None and bf16.value == pytest.approx(789, abs=0.01)
    assert "not in the catalog" in bf16.detail
    assert next(g for g in gpu.gemm if g.precision == "bf16").share_of_peak is None
    assert gpu.rating_tflops is None and gpu.sla_share is None
    # Checks that need no catalog figure are still judged.
    assert check(report, "sdc_bf16").verdict is Verdict.PASS
    assert check(report, "host_to_device").verdict is Verdict.PASS
    assert "not in catalog" in report.summary


def test_sdc_error_above_tolerance_or_nonfinite_fails(node, catalog, thresholds, clock) -> None:
    report = probe(node(1, sdc_units={"fp16": 4.0, "bf16": 4.01}), catalog, thresholds, clock)
    assert check(report, "sdc_fp16").verdict is Verdict.PASS  # the bound itself
    assert check(report, "sdc_bf16").verdict is Verdict.FAIL  # no warn band
    report = probe(node(1, nonfinite=3), catalog, thresholds, clock)
    c = check(report, "sdc_tf32")
    assert c.verdict is Verdict.FAIL and "3 non-finite" in c.detail
    assert report.gpus[0].sdc[0].error_units is None


def test_identical_work_must_give_identical_bits_across_gpus(node, catalog, thresholds, clock) -> None:
    backend = node(4)
    backend.fake_gpus[2].digests = {"bf16": "flipped"}
    backend.load_digests = {3: "other"}
    report = probe(backend, catalog, thresholds, clock)
    verdicts = [check(report, "bitwise_agreement", i).verdict for i in range(4)]
    assert verdicts == [Verdict.PASS, Verdict.PASS, Verdict.FAIL, Verdict.FAIL]
    assert "sdc bf16" in check(report, "bitwise_agreement", 2).detail
    assert "load bf16" in check(report, "bitwise_agreement", 3).detail
    assert report.checks[0].verdict is Verdict.FAIL and "GPU 2" in report.checks[0].detail
    assert report.verdict is Verdict.FAIL and report.exit_code == 2


def test_two_gpus_that_disagree_both_fail_and_one_gpu_is_not_compared(
    node, catalog, thresholds, clock
) -> None:
    backend = node(2)
    backend.fake_gpus[1].digests = {"fp16": "x"}
    report = probe(backend, catalog, thresholds, clock)
    assert [check(report, "bitwise_agreement", i).verdict for i in range(2)] == [Verdict.FAIL, Verdict.FAIL]
    report = probe(node(1), catalog, thresholds, clock)
    assert check(report, "bitwise_agreement").verdict is Verdict.SKIP
    assert report.checks[0].verdict is Verdict.SKIP and report.verdict is Verdict.PASS


def test_mixed_node_compares_like_with_like(node, fake_gpu, catalog, thresholds, clock) -> None:
    backend = node(3)
    backend.fake_gpus[2] = fake_gpu(2, name="NVIDIA L40S", capability=(8, 9), digests={"bf16": "different"})
    report = probe(backend, catalog, thresholds, clock)
    assert check(report, "bitwise_agreement", 0).verdict is Verdict.PASS
    assert check(report, "bitwise_agreement", 2).verdict is Verdict.SKIP


def test_results_changing_under_load_fail(node, catalog, thresholds, clock) -> None:
    backend = node(2)
    backend.mismatches = {1: 2}
    report = probe(backend, catalog, thresholds, clock)
    assert check(report, "load_stability", 0).verdict is Verdict.PASS
    c = check(report, "load_stability", 1)
    assert c.verdict is Verdict.FAIL and "2 time(s)" in c.detail


def test_thermals_power_and_throttle_reasons(node, catalog, thresholds, clock) -> None:
    backend = node(4)
    backend.nvml.sample_changes = {
        1: {"temp_c": 84.0},  # 3 °C from slowdown: warn
        2: {"reasons": 0x4 | 0x40},  # hardware thermal slowdown: fail
        3: {"reasons": 0x20},  # software thermal slowdown: warn
    }
    backend.nvml.inventory_changes = {3: {"power_limit_w": 500.0}}
    report = probe(backend, catalog, thresholds, clock)
    assert check(report, "temperature_headroom", 0).verdict is Verdict.PASS
    assert check(report, "temperature_headroom", 0).value == 19
    assert check(report, "throttle", 0).verdict is Verdict.PASS  # power capping at full load is normal
    assert "sw_power_cap" in report.gpus[0].load.throttle_reasons
    assert check(report, "temperature_headroom", 1).verdict is Verdict.WARN
    assert check(report, "throttle", 2).verdict is Verdict.FAIL
    assert "hw_thermal_slowdown" in check(report, "throttle", 2).detail
    assert check(report, "throttle", 3).verdict is Verdict.WARN
    power = check(report, "power_limit", 3)
    assert power.verdict is Verdict.WARN and power.share == pytest.approx(500 / 700, abs=1e-4)
    load = report.gpus[0].load
    assert (
        load.samples == 4 and load.max_power_w == 690.5 and load.pcie_gen == 5 and load.power_limit_w == 700
    )


@pytest.mark.parametrize(
    ("changes", "verdict", "words"),
    [
        ({}, Verdict.PASS, "no uncorrected"),
        ({"ecc_dbe_volatile": 1}, Verdict.FAIL, "uncorrected ECC"),
        ({"remap_pending": True}, Verdict.FAIL, "reset the GPU"),
        ({"remap_failed": True}, Verdict.FAIL, "remap failed"),
        (
            {"ecc_enabled": False, "ecc_dbe_volatile": None, "ecc_dbe_aggregate": None},
            Verdict.WARN,
            "ECC is off",
        ),
        ({"ecc_dbe_aggregate": 2}, Verdict.WARN, "over the card's life"),
        ({"remapped_rows_uncorrectable": 1}, Verdict.WARN, "remapped"),
    ],
)
def test_nvml_health(changes, verdict, words, node, catalog, thresholds, clock) -> None:
    backend = node(1)
    backend.nvml.inventory_changes = {0: changes}
    c = check(probe(backend, catalog, thresholds, clock), "nvml_health")
    assert c.verdict is verdict and words in c.detail


def test_pcie_link_below_its_maximum_under_load_warns(node, catalog, thresholds, clock) -> None:
    backend = node(1)
    backend.nvml.sample_changes = {0: {"pcie_gen": 4, "pcie_width": 8}}
    c = check(probe(backend, catalog, thresholds, clock), "nvml_health")
    assert c.verdict is Verdict.WARN and "Gen4" in c.detail and "x8" in c.detail


def test_without_nvml_health_is_not_collected(node, catalog, thresholds, clock) -> None:
    backend = node(2)
    backend.nvml, backend.nvml_note = None, "NVML not collected: nvidia-ml-py is not installed"
    report = probe(backend, catalog, thresholds, clock)
    gpu = report.gpus[0]
    assert not gpu.inventory.collected and "not installed" in gpu.inventory.note
    assert check(report, "nvml_health").verdict is Verdict.WARN
    for name in ("temperature_headroom", "throttle", "power_limit"):
        assert check(report, name).verdict is Verdict.SKIP
    assert gpu.load.samples == 0 and gpu.load.max_temp_c is None
    assert report.verdict is Verdict.WARN and report.environment.driver is None


def test_measurement_errors_fail_the_gpu_and_unsupported_software_warns(
    node, catalog, thresholds, clock
) -> None:
    from computelease.probe.core import MeasurementUnsupported

    backend = node(2)
    backend.fake_gpus[0].errors = {"gemm_bf16": RuntimeError("CUDA error: an illegal memory access\nmore")}
    backend.fake_gpus[1].errors = {"gemm_fp8": MeasurementUnsupported("this PyTorch has no torch._scaled_mm")}
    report = probe(backend, catalog, thresholds, clock)
    c = check(report, "gemm_bf16", 0)
    assert (
        c.verdict is Verdict.FAIL and c.detail == "failed: RuntimeError: CUDA error: an illegal memory access"
    )
    # A GPU that errors under a GEMM delivers nothing: share 0, not "not measured".
    assert report.gpus[0].sla_share == 0.0 and report.gpus[0].bf16_tflops is None
    assert check(report, "matmul_consistency", 0).verdict is Verdict.SKIP
    assert (
        check(report, "gemm_fp8", 1).verdict is Verdict.WARN
        and "_scaled_mm" in check(report, "gemm_fp8", 1).detail
    )
    assert report.gpus[1].verdict is Verdict.WARN and report.verdict is Verdict.FAIL
    # The probe went on after the error: every other measurement of GPU 0 was still taken.
    assert "sdc_fp8" in backend.fake_gpus[0].calls


def test_a_load_that_crashes_fails_every_gpu(node, catalog, thresholds, clock) -> None:
    backend = node(2)
    backend.load_error = RuntimeError("CUDA out of memory")
    report = probe(backend, catalog, thresholds, clock)
    assert all(check(report, "load_stability", i).verdict is Verdict.FAIL for i in range(2))
    assert check(report, "throttle").verdict is Verdict.WARN  # no samples under load


def test_judge_lower_is_better_and_missing_reference() -> None:
    spec = ThresholdSpec("matmul_consistency", "default", "absolute", 0.05, 0.10, "why " * 5)
    assert judge("matmul_consistency", 0.05, spec, None, label="x").verdict is Verdict.PASS
    assert judge("matmul_consistency", 0.0501, spec, None, label="x").verdict is Verdict.WARN
    assert judge("matmul_consistency", 0.1001, spec, None, label="x").verdict is Verdict.FAIL
    peak = ThresholdSpec("gemm_bf16", "default", "peak", 0.7, 0.56, "why " * 5)
    c = judge("gemm_bf16", 500.0, peak, None, label="bf16")
    assert c.verdict is Verdict.WARN and c.threshold.pass_value is None and c.threshold.reference is None


def test_worst_and_exit_codes() -> None:
    assert worst([Verdict.PASS, Verdict.SKIP]) is Verdict.PASS
    assert worst([Verdict.SKIP]) is Verdict.PASS
    assert worst([Verdict.WARN, Verdict.PASS]) is Verdict.WARN
    assert worst([Verdict.WARN, Verdict.FAIL, Verdict.PASS]) is Verdict.FAIL
    assert EXIT_CODES == {Verdict.PASS: 0, Verdict.WARN: 1, Verdict.FAIL: 2}


def test_throttle_names() -> None:
    assert throttle_names(0) == []
    assert throttle_names(0x4 | 0x80) == ["sw_power_cap", "hw_power_brake_slowdown"]
    assert throttle_names(0x1000) == ["unknown_0x1000"]


def test_modes_all_use_the_calibrated_gemm_size() -> None:
    assert {s.gemm_n for s in SETTINGS.values()} == {8192}
    quick, standard, full = SETTINGS["quick"], SETTINGS["standard"], SETTINGS["full"]
    assert quick.gemm_repeats < standard.gemm_repeats < full.gemm_repeats
    assert quick.load_seconds < standard.load_seconds < full.load_seconds
    for s in SETTINGS.values():
        # Large enough to leave the 50 MB L2 cache of an H100 far behind.
        assert s.copy_bytes >= 1 << 30 and s.sdc_n % 16 == 0  # scaled_mm needs multiples of 16


def test_a_broken_timing_is_a_failed_measurement_not_a_figure(node, catalog, thresholds, clock) -> None:
    backend = node(1)
    backend.fake_gpus[0].gemm = lambda *args: [0.0, 0.0]
    backend.fake_gpus[0].copy = lambda *args: []
    report = probe(backend, catalog, thresholds, clock)
    assert (
        check(report, "gemm_bf16").verdict is Verdict.FAIL
        and "no usable timing" in check(report, "gemm_bf16").detail
    )
    assert check(report, "device_copy").verdict is Verdict.FAIL
