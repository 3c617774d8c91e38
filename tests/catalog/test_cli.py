"""`computelease catalog ...` and `computelease capacity convert`, run in-process."""

from __future__ import annotations

import json


def test_convert_the_articles_contract_and_back(cli) -> None:
    code, out, err = cli(
        "capacity",
        "convert",
        "--pflops",
        "1545",
        "--precision",
        "bf16",
        "--model",
        "nvidia-h100-sxm",
        "--json",
    )
    assert code == 0 and err == ""
    data = json.loads(out)
    assert (data["gpus"], data["nodes"], data["pflops"]) == (1562, 196, 1545.4428)
    code, out, _ = cli("capacity", "convert", "--gpus", "1562", "--model", "nvidia-h100-sxm", "--json")
    assert json.loads(out)["pflops"] == 1545.4428
    code, out, _ = cli("capacity", "convert", "--nodes", "2", "--model", "nvidia-h100-sxm")
    assert (
        code == 0
        and "16 × nvidia-h100-sxm = 2 nodes of nvidia-hgx-h100-8gpu; 15.8304 PFLOPS bf16 dense" in out
    )


def test_an_unknown_figure_is_one_line_naming_figure_and_model(cli) -> None:
    code, out, err = cli(
        "capacity", "convert", "--pflops", "10", "--model", "huawei-ascend-910b", "--precision", "fp16"
    )
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "fp16 dense TFLOPS of huawei-ascend-910b is unknown" in err and "256–376" in err


def test_a_weak_figure_warns_on_stderr(cli) -> None:
    code, out, err = cli(
        "capacity",
        "convert",
        "--pflops",
        "8",
        "--model",
        "huawei-ascend-910c",
        "--precision",
        "fp16",
        "--json",
    )
    assert code == 0 and json.loads(out)["gpus"] == 10
    assert err.startswith("warning: the fp16 dense figure of huawei-ascend-910c is weak")


def test_bad_input(cli) -> None:
    code, _, err = cli("capacity", "convert", "--pflops", "lots", "--model", "nvidia-h100-sxm")
    assert code == 1 and "--pflops must be a number" in err
    code, _, err = cli("capacity", "convert", "--model", "nvidia-h100-sxm")
    assert code == 1 and "give exactly one of pflops, gpus or nodes" in err


def test_list_show_and_add_your_own(cli, tmp_path) -> None:
    code, out, _ = cli("catalog", "list", "--json")
    data = json.loads(out)
    assert code == 0 and "nvidia-h20" in {a["id"] for a in data["accelerators"]}
    assert "huawei-ascend-910b-8card" in {s["id"] for s in data["skus"]}
    code, out, _ = cli("catalog", "list")
    assert code == 0 and "nvidia-h100-sxm" in out and "989.4" in out

    code, out, _ = cli("catalog", "show", "nvidia-h800-sxm", "--json")
    entry = json.loads(out)
    assert code == 0 and entry["scale_up_gbs"]["value"] == 400 and entry["custom"] is False
    code, out, _ = cli("catalog", "show", "nvidia-hgx-h20-8gpu")
    assert code == 0 and "gpus_per_node" in out

    # What `show --json` prints is what `add-accelerator` reads.
    entry["id"], entry["name"] = "our-h800-capped", "H800 as we measured it"
    path = tmp_path / "ours.json"
    path.write_text(json.dumps(entry))
    assert cli("catalog", "add-accelerator", str(path))[0] == 0
    code, out, _ = cli("catalog", "list", "--custom", "--json")
    assert [a["id"] for a in json.loads(out)["accelerators"]] == ["our-h800-capped"]
    code, _, err = cli("catalog", "add-accelerator", str(path))
    assert code == 1 and "already a custom catalog entry" in err
    path.write_text("[1, 2")
    code, _, err = cli("catalog", "add-sku", str(path))
    assert code == 1 and "is not JSON" in err
    assert cli("catalog", "remove", "our-h800-capped")[0] == 0
    code, _, err = cli("catalog", "show", "nope")
    assert code == 1 and "no server SKU 'nope'" in err
