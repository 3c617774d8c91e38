"""`computelease probe`: measure what this node's GPUs deliver, judge it, report it (issue 8).

Exit codes are the verdict: 0 pass, 1 warn, 2 fail, 3 could not run (no torch, no GPU, bad options,
or the report could not be stored). Usage errors exit 3 too, so that a typo is never read as a GPU that
failed acceptance (click would exit 2).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import typer
from typer.core import TyperGroup

from computelease.catalog.core import load_catalog
from computelease.kit.cli import err, out
from computelease.probe.core import ProbeUnavailable, ThresholdsInvalid, load_thresholds
from computelease.probe.render import render
from computelease.probe.runner import run_probe
from computelease.probe.schemas import COULD_NOT_RUN, ProbeReport


class _ProbeGroup(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            exc.exit_code = COULD_NOT_RUN
            raise

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as exc:
            exc.exit_code = COULD_NOT_RUN
            raise


probe_app = typer.Typer(
    cls=_ProbeGroup,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
commands = [("probe", probe_app)]


class PostFailed(Exception):
    pass


def open_backend() -> Any:
    """The real backend; a seam that tests replace with a fake device."""
    from computelease.probe.device import open_backend as torch_backend

    return torch_backend()


def _stop(message: str) -> typer.Exit:
    err.print(message, markup=False, highlight=False)
    return typer.Exit(COULD_NOT_RUN)


@probe_app.callback(invoke_without_command=True)
def probe(
    quick: Annotated[
        bool, typer.Option("--quick", help="fewer repeats and a 10 s load (about a minute)")
    ] = False,
    full: Annotated[bool, typer.Option("--full", help="more repeats, larger tests and a 5 min load")] = False,
    json_file: Annotated[
        str | None, typer.Option("--json", metavar="FILE", help="write the JSON report to FILE ('-': stdout)")
    ] = None,
    post: Annotated[
        str | None,
        typer.Option("--post", metavar="URL", help="store the report at URL/api/v1/nodes/SERIAL/acceptance"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token", envvar="COMPUTELEASE_TOKEN", help="API token for --post (or COMPUTELEASE_TOKEN)"
        ),
    ] = None,
    node: Annotated[str | None, typer.Option("--node", metavar="SERIAL", help="the node's serial")] = None,
) -> None:
    """Acceptance probe: GEMM TFLOPS, memory and host bandwidth, silent data corruption, thermals and
    health of every GPU on this node, judged against the catalog. Exit 0 pass, 1 warn, 2 fail, 3 could
    not run."""
    if quick and full:
        raise _stop("choose one of --quick and --full")
    if post is not None:
        if not token or not node:
            raise _stop("--post needs --token TOKEN (or COMPUTELEASE_TOKEN) and --node SERIAL")
        if urlsplit(post).scheme not in ("http", "https") or not urlsplit(post).netloc:
            raise _stop(f"--post needs an http(s) URL such as https://lease.example.com, got {post!r}")
    mode = "quick" if quick else "full" if full else "standard"
    catalog = load_catalog()
    try:
        thresholds = load_thresholds(catalog)
    except ThresholdsInvalid as exc:
        raise _stop(str(exc)) from None
    try:
        backend = open_backend()
    except ProbeUnavailable as exc:
        raise _stop(str(exc)) from None
    try:
        report = run_probe(
            backend,
            mode=mode,
            catalog=catalog,
            thresholds=thresholds,
            node=node,
            progress=lambda message: err.print(f"probe: {message}", markup=False, highlight=False),
        )
    except ProbeUnavailable as exc:
        raise _stop(str(exc)) from None
    finally:
        close = getattr(backend, "close", None)
        if close is not None:
            close()

    # With the JSON on stdout, the table goes to stderr so that stdout stays parseable.
    render(report, err if json_file == "-" else out)
    if json_file == "-":
        print(report.model_dump_json(indent=2))
    elif json_file:
        Path(json_file).write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    if post is not None:
        assert token is not None and node is not None
        try:
            post_report(report, post, token, node)
        except PostFailed as exc:
            raise _stop(
                f"the probe ran ({report.verdict.value}) but the report was not stored: {exc}"
            ) from None
        err.print(f"report stored for node {node} at {post}", markup=False, highlight=False)
    raise typer.Exit(report.exit_code)


def acceptance_url(base_url: str, node: str) -> str:
    return f"{base_url.rstrip('/')}/api/v1/nodes/{quote(node, safe='')}/acceptance"


def post_report(report: ProbeReport, base_url: str, token: str, node: str, *, timeout: float = 30) -> int:
    """POST the report as JSON with the bearer token; the HTTP status, or :class:`PostFailed`."""
    url = acceptance_url(base_url, node)
    if urlsplit(url).scheme not in ("http", "https"):
        raise PostFailed(f"not an http(s) URL: {base_url}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=report.model_dump_json().encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, application/problem+json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked above
            return response.status
    except urllib.error.HTTPError as exc:
        raise PostFailed(f"{url} answered HTTP {exc.code}{_problem_detail(exc)}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PostFailed(f"could not reach {url} ({reason})") from None


def _problem_detail(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read().decode("utf-8", errors="replace") or "null")
    except (ValueError, OSError):
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail[:3])
    return f": {detail}" if detail else ""
