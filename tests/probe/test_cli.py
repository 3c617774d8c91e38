"""`computelease probe` in-process through computelease.cli.main, on a fake device."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from computelease.probe.cli import acceptance_url
from computelease.probe.schemas import ProbeReport


def test_no_torch_exits_3_with_one_sentence(probe_cli, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, err = probe_cli()
    assert code == 3 and out == ""
    assert err == "probe needs PyTorch with CUDA: pip install 'computelease[probe]'\n"


def test_no_gpu_exits_3_with_one_sentence(probe_cli, monkeypatch) -> None:
    import types

    torch = types.ModuleType("torch")
    torch.__version__ = "2.15.0+cu128"
    torch.version = types.SimpleNamespace(cuda="12.8", hip=None)
    torch.cuda = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setitem(sys.modules, "torch", torch)
    code, out, err = probe_cli("--quick")
    assert (code, out, err) == (3, "", "no CUDA GPU visible\n")


def test_healthy_node_passes_with_a_table(probe_cli, node) -> None:
    backend = node(8)
    code, out, err = probe_cli("--quick", "--node", "SN-001", backend=backend)
    assert code == 0, err
    assert "GPU acceptance" in out and "nvidia-h100-sxm" in out and "789" in out
    assert "PASS (exit 0)" in out and "checks that did not pass" not in out
    assert "probe: load" in err and "Traceback" not in err
    assert backend.closed


@pytest.mark.parametrize(("bf16", "code", "word"), [(700.0, 1, "WARN"), (500.0, 2, "FAIL")])
def test_exit_code_is_the_verdict(bf16, code, word, probe_cli, node) -> None:
    backend = node(2)
    backend.fake_gpus[1].tflops["bf16"] = bf16
    backend.fake_gpus[1].reference_tflops = bf16
    got, out, _ = probe_cli("--quick", backend=backend)
    assert got == code
    assert f"{word} (exit {code})" in out and "checks that did not pass" in out and "gemm_bf16" in out


def test_json_file_holds_the_report(probe_cli, node, tmp_path) -> None:
    path = tmp_path / "report.json"
    code, _, _ = probe_cli("--full", "--json", str(path), "--node", "SN-7", backend=node(2))
    assert code == 0
    report = ProbeReport.model_validate_json(path.read_text())
    assert report.mode == "full" and report.node == "SN-7" and len(report.gpus) == 2


def test_json_to_stdout_keeps_stdout_parseable(probe_cli, node) -> None:
    code, out, err = probe_cli("--json", "-", backend=node(1))
    assert code == 0
    report = ProbeReport.model_validate(json.loads(out))
    assert report.mode == "standard" and "GPU acceptance" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--quick", "--full"), "choose one of --quick and --full"),
        (("--post", "http://x"), "--post needs --token TOKEN (or COMPUTELEASE_TOKEN) and --node SERIAL"),
        (("--post", "ftp://x", "--token", "t", "--node", "n"), "--post needs an http(s) URL"),
    ],
)
def test_bad_options_exit_3_in_one_line(args, message, probe_cli, node, monkeypatch) -> None:
    monkeypatch.delenv("COMPUTELEASE_TOKEN", raising=False)
    backend = node(1)
    code, out, err = probe_cli(*args, backend=backend)
    assert code == 3 and out == "" and err.count("\n") == 1 and message in err
    assert backend.fake_gpus[0].calls == []  # refused before measuring anything


def test_usage_errors_exit_3_not_2(probe_cli) -> None:
    # 2 means "a GPU failed acceptance"; a typo must not read as one.
    code, _out, err = probe_cli("--quik")
    assert code == 3 and "--quik" in err and "Traceback" not in err


class _Server:
    def __init__(self, status: int, body: dict) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/problem+json" if status >= 400 else "application/json"
                )
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator:
    servers: list[_Server] = []

    def start(status: int = 201, body: dict | None = None) -> _Server:
        servers.append(_Server(status, body or {"id": 1}))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_post_stores_the_report_on_the_node(probe_cli, node, server, monkeypatch) -> None:
    srv = server()
    monkeypatch.setenv("COMPUTELEASE_TOKEN", "cl_secret")
    code, _, err = probe_cli("--quick", "--post", srv.url + "/", "--node", "HGX 01/A", backend=node(2))
    assert code == 0, err
    assert "report stored for node HGX 01/A" in err
    [(path, headers, body)] = srv.requests
    assert path == "/api/v1/nodes/HGX%2001%2FA/acceptance"
    assert headers["Authorization"] == "Bearer cl_secret" and headers["Content-Type"] == "application/json"
    report = ProbeReport.model_validate_json(body)
    assert report.node == "HGX 01/A" and report.verdict.value == "pass"


def test_a_refused_post_exits_3_with_the_servers_reason(probe_cli, node, server) -> None:
    srv = server(404, {"title": "Not Found", "status": 404, "detail": "node HGX-9 does not exist"})
    args = ("--quick", "--post", srv.url, "--token", "t", "--node", "HGX-9")
    code, _, err = probe_cli(*args, backend=node(1))
    assert code == 3
    last = err.strip().splitlines()[-1]
    assert last.startswith("the probe ran (pass) but the report was not stored:")
    assert "HTTP 404: node HGX-9 does not exist" in last


def test_an_unreachable_server_exits_3(probe_cli, node, server, tmp_path) -> None:
    srv = server()
    url = srv.url
    srv.close()  # nothing listens there any more
    path = tmp_path / "kept.json"
    code, _, err = probe_cli(
        "--quick", "--json", str(path), "--post", url, "--token", "t", "--node", "n", backend=node(1)
    )
    assert code == 3 and "could not reach" in err.strip().splitlines()[-1]
    assert ProbeReport.model_validate_json(path.read_text()).verdict.value == "pass"  # the figures are kept


def test_acceptance_url() -> None:
    assert (
        acceptance_url("https://lease.example.com/", "SN 1")
        == "https://lease.example.com/api/v1/nodes/SN%201/acceptance"
    )
