"""Stand-ins for what the agent talks to: a fake NVML module and a fake ingest server.

The fake NVML copies pynvml's surface as nvidia-ml-py 13 has it: ``NVMLError`` carrying ``.value`` with
per-code subclasses (``NVMLError_NotSupported``…), handles as opaque objects, event sets that raise
``NVML_ERROR_TIMEOUT`` when empty, and strings as ``str`` (new bindings) or ``bytes`` (old ones).

The fake server keeps heartbeats by (node, seq) like the ingest endpoint must: a resent heartbeat is a
duplicate, not a second copy. It answers through ``httpx.MockTransport`` or over a real socket.
"""

from __future__ import annotations

import json
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest

from computelease.telemetry.schemas import IngestResult, RejectedHeartbeat, parse_batch

# -- fake NVML -----------------------------------------------------------------------------------------

NOT_SUPPORTED, TIMEOUT, UNKNOWN, FUNCTION_NOT_FOUND, GPU_IS_LOST = 3, 10, 999, 13, 15


class NVMLError(Exception):
    _names: ClassVar[dict[int, str]] = {
        3: "Not Supported",
        10: "Timeout",
        13: "Function Not Found",
        15: "GPU is lost",
        999: "Unknown Error",
    }

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._names.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self, value: int = NOT_SUPPORTED) -> None:
        super().__init__(value)


class NVMLError_Timeout(NVMLError):
    def __init__(self, value: int = TIMEOUT) -> None:
        super().__init__(value)


@dataclass
class FakeGpu:
    uuid: str
    serial: str = "1650000000001"
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total: int = 81_559 * 1024 * 1024
    memory_used: int = 1024 * 1024 * 1024
    util: int = 97
    power_mw: int = 612_345
    temperature: int = 61
    sm_mhz: int = 1980
    ecc: dict[tuple[int, int], int] = field(
        default_factory=lambda: {(0, 0): 2, (1, 0): 0, (0, 1): 9, (1, 1): 0}
    )
    remap: tuple[int, int, int, int] = (0, 0, 0, 0)
    pcie: tuple[int, int] = (5, 16)
    throttle: int = 0x4 | 0x800  # sw_power_cap and a bit newer than the agent's table
    # Call names (without the nvmlDeviceGet prefix) answering NOT_SUPPORTED, or another error code.
    fails: dict[str, int] = field(default_factory=dict)
    lost: bool = False


class Handle:
    def __init__(self, index: int) -> None:
        self.index = index


class EventSet:
    def __init__(self) -> None:
        self.queue: list[types.SimpleNamespace] = []
        self.registered: list[Handle] = []


def make_fake_nvml(
    gpus: list[FakeGpu],
    *,
    as_bytes: bool = False,
    events: bool = True,
    event_reasons: bool = True,
    subclass_errors: bool = True,
) -> types.ModuleType:
    """A module with pynvml's API over ``gpus``; ``as_bytes`` answers strings the old way."""
    nvml = types.ModuleType("pynvml")
    handles = [Handle(i) for i in range(len(gpus))]
    state: dict[str, Any] = {"init": 0, "shutdown": 0, "sets": []}
    nvml.state = state  # type: ignore[attr-defined]
    nvml.NVMLError = NVMLError  # type: ignore[attr-defined]
    nvml.NVMLError_NotSupported = NVMLError_NotSupported  # type: ignore[attr-defined]
    nvml.NVMLError_Timeout = NVMLError_Timeout  # type: ignore[attr-defined]
    for name, value in {
        "NVML_ERROR_NOT_SUPPORTED": NOT_SUPPORTED,
        "NVML_ERROR_TIMEOUT": TIMEOUT,
        "NVML_ERROR_FUNCTION_NOT_FOUND": FUNCTION_NOT_FOUND,
        "NVML_ERROR_GPU_IS_LOST": GPU_IS_LOST,
        "NVML_TEMPERATURE_GPU": 0,
        "NVML_CLOCK_SM": 1,
        "NVML_VOLATILE_ECC": 0,
        "NVML_AGGREGATE_ECC": 1,
        "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
        "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
        "nvmlEventTypeXidCriticalError": 0x8,
    }.items():
        setattr(nvml, name, value)

    def error(code: int) -> NVMLError:
        if code == NOT_SUPPORTED and subclass_errors:
            return NVMLError_NotSupported()
        return NVMLError(code)

    def device_call(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(handle: Handle, *args: Any) -> Any:
            gpu = gpus[handle.index]
            if gpu.lost:
                raise NVMLError(GPU_IS_LOST)
            if name in gpu.fails:
                raise error(gpu.fails[name])
            return fn(gpu, *args)

        return call

    def s(value: str) -> str | bytes:
        return value.encode() + b"\x00" if as_bytes else value

    def init() -> None:
        state["init"] += 1

    def shutdown() -> None:
        state["shutdown"] += 1

    nvml.nvmlInit = init  # type: ignore[attr-defined]
    nvml.nvmlShutdown = shutdown  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(gpus)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: handles[i]  # type: ignore[attr-defined]
    calls: dict[str, Callable[..., Any]] = {
        "UUID": lambda g: s(g.uuid),
        "Serial": lambda g: s(g.serial),
        "Name": lambda g: s(g.name),
        "MemoryInfo": lambda g: types.SimpleNamespace(total=g.memory_total, used=g.memory_used, free=0),
        "UtilizationRates": lambda g: types.SimpleNamespace(gpu=g.util, memory=40),
        "PowerUsage": lambda g: g.power_mw,
        "Temperature": lambda g, sensor: g.temperature,
        "ClockInfo": lambda g, kind: g.sm_mhz,
        "TotalEccErrors": lambda g, error_type, counter: g.ecc[(error_type, counter)],
        "RemappedRows": lambda g: g.remap,
        "CurrPcieLinkGeneration": lambda g: g.pcie[0],
        "CurrPcieLinkWidth": lambda g: g.pcie[1],
        "CurrentClocksThrottleReasons": lambda g: g.throttle,
        "CurrentClocksEventReasons": lambda g: g.throttle,
    }
    for name, fn in calls.items():
        if name == "CurrentClocksEventReasons" and not event_reasons:
            continue  # an old binding without the renamed call
        setattr(nvml, f"nvmlDeviceGet{name}", device_call(name, fn))

    def event_set_create() -> EventSet:
        if not events:
            raise error(NOT_SUPPORTED)
        created = EventSet()
        state["sets"].append(created)
        return created

    def register(handle: Handle, kinds: int, event_set: EventSet) -> None:
        assert kinds == 0x8
        event_set.registered.append(handle)

    def wait(event_set: EventSet, timeout_ms: int) -> types.SimpleNamespace:
        if not event_set.queue:
            raise NVMLError_Timeout()
        return event_set.queue.pop(0)

    nvml.nvmlEventSetCreate = event_set_create  # type: ignore[attr-defined]
    nvml.nvmlDeviceRegisterEvents = register  # type: ignore[attr-defined]
    nvml.nvmlEventSetWait = wait  # type: ignore[attr-defined]
    nvml.nvmlEventSetFree = lambda event_set: None  # type: ignore[attr-defined]

    def xid(index: int, code: int) -> None:
        """What the driver does on an XID: queue an event on every set the GPU is registered with."""
        for event_set in state["sets"]:
            if handles[index] in event_set.registered:
                event_set.queue.append(
                    types.SimpleNamespace(device=handles[index], eventType=0x8, eventData=code)
                )

    nvml.fake_xid = xid  # type: ignore[attr-defined]
    return nvml


@pytest.fixture
def fake_gpus() -> list[FakeGpu]:
    return [
        FakeGpu(uuid=f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd", serial=f"165000000000{i}")
        for i in range(4)
    ]


# -- fake ingest server --------------------------------------------------------------------------------


class FakeServer:
    """The ingest endpoint's contract: idempotent by (node, seq); rejects per heartbeat in a 200."""

    def __init__(self, token: str = "secret") -> None:  # noqa: S107
        self.token = token
        self.stored: dict[tuple[str, int], dict[str, Any]] = {}
        self.arrivals: list[tuple[str, int]] = []  # first arrivals, in order
        self.requests = 0
        self.down = False
        self.reject: dict[int, str] = {}  # seq → reason, answered in the 200
        self.poison: set[int] = set()  # a batch holding one of these is a 422
        self.status: int | None = None  # answer every request with this status
        self.headers: dict[str, str] = {}
        self.lose_answer = False  # commit, then drop the connection (the crash window)
        self.seen_auth: set[str] = set()

    def handle(self, path: str, auth: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        self.seen_auth.add(auth)
        if path != "/api/v1/telemetry/heartbeats":
            return 404, {}, b'{"detail": "Not Found"}'
        if self.status is not None:
            return self.status, self.headers, json.dumps({"detail": f"status {self.status}"}).encode()
        if auth != f"Bearer {self.token}":
            return 401, {}, b'{"detail": "invalid token"}'
        payload = json.loads(body)
        parsed = parse_batch(payload)
        if any(h.seq in self.poison for h in parsed.heartbeats):
            return 422, {}, b'{"detail": "the batch is malformed"}'
        accepted = duplicates = 0
        rejected = list(parsed.rejected)
        for index, heartbeat in enumerate(parsed.heartbeats):
            if heartbeat.seq in self.reject:
                rejected.append(
                    RejectedHeartbeat(seq=heartbeat.seq, index=index, reason=self.reject[heartbeat.seq])
                )
                continue
            key = (parsed.node, heartbeat.seq)
            if key in self.stored:
                duplicates += 1
                continue
            self.stored[key] = heartbeat.model_dump(mode="json")
            self.arrivals.append(key)
            accepted += 1
        result = IngestResult(accepted=accepted, duplicates=duplicates, rejected=rejected)
        return 200, {}, result.model_dump_json().encode()

    def transport(self) -> httpx.MockTransport:
        def answer(request: httpx.Request) -> httpx.Response:
            if self.down:
                raise httpx.ConnectError("connection refused", request=request)
            status, headers, body = self.handle(
                request.url.path, request.headers.get("Authorization", ""), request.content
            )
            if self.lose_answer:
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return httpx.Response(
                status, headers={"Content-Type": "application/json", **headers}, content=body
            )

        return httpx.MockTransport(answer)

    def seqs(self, node: str) -> list[int]:
        return [seq for n, seq in self.arrivals if n == node]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def live_server(server: FakeServer) -> Iterator[tuple[str, FakeServer]]:
    """The fake server on a real local socket, for commands that build their own HTTP client."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, headers, content = server.handle(self.path, self.headers.get("Authorization", ""), body)
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", server
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def nvml_kit() -> types.SimpleNamespace:
    """The fake NVML's parts (test modules cannot import from a conftest under importlib mode)."""
    return types.SimpleNamespace(
        make=make_fake_nvml,
        Gpu=FakeGpu,
        NVMLError=NVMLError,
        NOT_SUPPORTED=NOT_SUPPORTED,
        FUNCTION_NOT_FOUND=FUNCTION_NOT_FOUND,
        UNKNOWN=UNKNOWN,
    )
