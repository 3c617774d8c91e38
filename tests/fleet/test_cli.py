"""`computelease site ...` and `computelease node ...`, run in-process."""

from __future__ import annotations

import json

GOOD = (
    "serial,sku,site,rack,fabric,state,state_since,purchase_cost,purchase_date,supplier,gpu_uuids\r\n"
    "C1,nvidia-hgx-h100-8gpu,qy-1,R01,ib-a,in_service,2025-03-01T09:00:00+08:00,2300000,2025-02-01,浪潮,GPU-1;GPU-2\r\n"
    "C2,nvidia-hgx-h20-8gpu,qy-1,R09,ib-b,ordered,,1150000.00,2025-02-02,,\r\n"
)


def test_sites_nodes_import_state_and_export(cli, tmp_path) -> None:
    code, out, _ = cli(
        "site", "create", "qy-1", "--name", "庆阳智算中心", "--kind", "own_center", "--city", "庆阳",
        "--pue", "1.2", "--power-price", "0.35", "--racks", "4", "--rack-kw", "25",
    )  # fmt: skip
    assert code == 0 and "site qy-1 created" in out
    code, _, err = cli(
        "site",
        "create",
        "x",
        "--name",
        "x",
        "--kind",
        "colocation",
        "--city",
        "x",
        "--pue",
        "0.5",
        "--power-price",
        "1",
    )
    assert code == 1 and "pue" in err and err.count("\n") == 1

    bad = tmp_path / "bad.csv"
    bad.write_text(
        GOOD
        + "C3,nvidia-hgx-h100-8gpu,nowhere,,,in_service,,1,2025-01-01,,\r\n"
        + "C1,x,qy-1,,,ordered,,1,2025-01-01,,\r\n"
    )
    code, out, err = cli("node", "import", str(bad))
    assert code == 1
    assert f"{bad}:4: site 'nowhere' does not exist" in err
    assert (
        f"{bad}:5: sku 'x' is not in the catalog" in err and f"{bad}:5: serial 'C1' is also on line 2" in err
    )
    assert err.strip().endswith("2 bad row(s) in " + str(bad) + "; nothing was imported")
    assert json.loads(cli("node", "list", "--json")[1]) == []

    good = tmp_path / "good.csv"
    good.write_text(GOOD, encoding="utf-8")
    code, out, _ = cli("node", "import", str(good), "--dry-run")
    assert code == 0 and "2 node(s) would be imported" in out
    code, out, _ = cli("node", "import", str(good))
    assert code == 0 and "rack qy-1/R09 created" in out and "2 node(s) imported" in out

    code, out, _ = cli("node", "list", "--state", "in_service", "--json")
    (c1,) = json.loads(out)
    assert (
        c1["serial"] == "C1"
        and c1["gpus"][1]["uuid"] == "GPU-2"
        and c1["state_since"].startswith("2025-03-01T01:00")
    )

    code, _, err = cli("node", "state", "C2", "in_service")
    assert (
        code == 1 and "C2 is ordered; it cannot move to in_service" in err and "may move to: delivered" in err
    )
    code, out, _ = cli("node", "state", "C2", "delivered", "--reason", "arrived")
    assert code == 0 and "now delivered" in out
    code, out, _ = cli("node", "show", "C2", "--json")
    assert [e["to_state"] for e in json.loads(out)["events"]] == ["ordered", "delivered"]
    code, _, err = cli("node", "state", "C2", "accepted", "--at", "2025-03-01T09:00")
    assert code == 1 and "needs an offset" in err

    exported = tmp_path / "out.csv"
    code, _, err = cli("node", "export", "-o", str(exported))
    assert code == 0 and "2 node(s) written" in err
    text = exported.read_text(encoding="utf-8-sig")
    assert text.splitlines()[1].startswith(
        "C1,nvidia-hgx-h100-8gpu,nvidia-h100-sxm,qy-1,R01,ib-a,in_service,"
    )
    assert "2025-03-01T09:00:00+08:00" in text  # the site's local time, with its offset
    code, out, _ = cli("node", "export", "--site", "qy-1", "--state", "delivered")
    assert code == 0 and "C2" in out and "C1" not in out
