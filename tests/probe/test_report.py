"""The JSON report: what the server's POST /api/v1/nodes/{node}/acceptance validates."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from computelease.probe.runner import run_probe
from computelease.probe.schemas import ProbeReport, Verdict


@pytest.fixture
def report(node, catalog, thresholds, clock) -> ProbeReport:
    backend = node(2)
    backend.fake_gpus[1].tflops["bf16"] = 700.0  # warn: under 742.05
    backend.fake_gpus[1].reference_tflops = 700.0
    return run_probe(backend, mode="quick", catalog=catalog, thresholds=thresholds, node="SN-42", now=clock)


def test_round_trip_through_json(report) -> None:
    text = report.model_dump_json()
    again = ProbeReport.model_validate_json(text)
    assert again == report
    assert ProbeReport.model_validate(json.loads(text)) == report


def test_report_carries_identity_versions_figures_and_thresholds(report) -> None:
    data = json.loads(report.model_dump_json())
    assert data["schema_version"] == 1 and data["mode"] == "quick" and data["node"] == "SN-42"
    env = data["environment"]
    assert env["driver"] == "580.65.06" and env["torch"] == "2.15.0+cu128" and env["cuda_runtime"] == "12.8"
    assert env["gpu_count"] == 2 and env["computelease"]
    assert data["settings"]["gemm_n"] == 8192 and data["settings"]["load_seconds"] == 10
    gpu = data["gpus"][1]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["model"] == "nvidia-h100-sxm"
    assert gpu["uuid"] == "GPU-fake-1" and gpu["inventory"]["serial"] == "1654321001"
    assert gpu["compute_capability"] == "9.0"
    assert {g["precision"] for g in gpu["gemm"]} == {"bf16", "fp16", "tf32", "fp8"}
    assert {b["kind"] for b in gpu["bandwidth"]} == {"device_copy", "host_to_device", "device_to_host"}
    assert {s["precision"] for s in gpu["sdc"]} == {"bf16", "fp16", "tf32", "fp8"}
    assert gpu["bf16_tflops"] == 700.0 and gpu["rating_tflops"] == 742.05
    assert gpu["sla_share"] == round(700 / 742.05, 4)
    bf16 = next(c for c in gpu["checks"] if c["name"] == "gemm_bf16")
    assert bf16["verdict"] == "warn" and bf16["threshold"]["source"] == "nvidia-h100-sxm"
    assert bf16["threshold"]["pass_value"] == 742.05 and "789" in bf16["threshold"]["why"]
    assert gpu["verdict"] == "warn" and data["verdict"] == "warn" and data["exit_code"] == 1
    assert data["summary"].startswith("warn: 2 × nvidia-h100-sxm; bf16 700.0–789.0 TFLOPS")
    assert "GPU 1 gemm_bf16 warn" in data["summary"]


def test_every_gpu_has_the_same_set_of_checks(report) -> None:
    names = [[c.name for c in g.checks] for g in report.gpus]
    assert names[0] == names[1]
    assert set(names[0]) >= {
        "gemm_bf16",
        "gemm_fp16",
        "gemm_tf32",
        "gemm_fp8",
        "matmul_consistency",
        "device_copy",
        "host_to_device",
        "device_to_host",
        "sdc_bf16",
        "sdc_fp8",
        "load_stability",
        "nvml_health",
        "temperature_headroom",
        "throttle",
        "power_limit",
        "bitwise_agreement",
    }
    for gpu in report.gpus:
        for check in gpu.checks:
            assert check.detail and "\n" not in check.detail


def _tampered(report: ProbeReport, change) -> dict:
    data = json.loads(report.model_dump_json())
    change(data)
    return data


def test_verdicts_must_follow_from_the_checks(report) -> None:
    def gpu_says_pass(d):
        d["gpus"][1]["verdict"] = "pass"

    def node_says_pass(d):
        d["verdict"], d["exit_code"] = "pass", 0

    def wrong_exit(d):
        d["exit_code"] = 0

    def same_index(d):
        d["gpus"][1]["index"] = 0

    for change, words in (
        (gpu_says_pass, "GPU 1: verdict pass but its checks give warn"),
        (node_says_pass, "verdict pass but the GPUs and node checks give warn"),
        (wrong_exit, "exit_code 0 does not match verdict warn"),
        (same_index, "two GPUs share an index"),
    ):
        with pytest.raises(ValidationError, match=words):
            ProbeReport.model_validate(_tampered(report, change))


def test_unknown_fields_and_non_finite_figures_are_refused(report) -> None:
    def extra(d):
        d["gpus"][0]["gemm"][0]["boost"] = True

    def nan(d):
        d["gpus"][0]["gemm"][0]["tflops"] = float("nan")

    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ProbeReport.model_validate(_tampered(report, extra))
    with pytest.raises(ValidationError):
        ProbeReport.model_validate(_tampered(report, nan))


def test_a_report_needs_a_gpu(report) -> None:
    def none(d):
        d["gpus"] = []

    with pytest.raises(ValidationError):
        ProbeReport.model_validate(_tampered(report, none))


def test_json_schema_is_available_for_the_server(report) -> None:
    schema = ProbeReport.model_json_schema()
    assert "gpus" in schema["required"] and "GpuReport" in schema["$defs"]
    assert "sla_share" in schema["$defs"]["GpuReport"]["properties"]
    assert {v.value for v in Verdict} == {"pass", "warn", "fail", "skip"}
