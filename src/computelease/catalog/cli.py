"""`computelease catalog ...` and `computelease capacity convert`."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated

import typer

from computelease.auth.core import SYSTEM
from computelease.catalog import service
from computelease.catalog.core import PRECISIONS, Figure
from computelease.errors import BadRequest
from computelease.kit.cli import echo_json, err, out, transaction

catalog_app = typer.Typer(
    help="Accelerator and server-SKU catalog (shipped and your own).", no_args_is_help=True
)
capacity_app = typer.Typer(help="Capacity units: PFLOPS, GPUs, nodes.", no_args_is_help=True)
commands = [("catalog", catalog_app), ("capacity", capacity_app)]


def _table(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    """Like ``echo_table``, but ids never wrap or get cut: they are what people type next."""
    from rich.table import Table

    table = Table()
    for i, col in enumerate(columns):
        keep = col in ("id", "accelerator", "field")
        width = max([len(col), *(len(str(r[i])) for r in rows)]) if keep else None
        table.add_column(col, no_wrap=keep, min_width=width)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def _figure(figure: Figure | None) -> str:
    return "" if figure is None else figure.display()


@catalog_app.command("list")
def catalog_list(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    custom: Annotated[bool, typer.Option("--custom", help="only your own entries")] = False,
) -> None:
    """List accelerators and server SKUs (dense TFLOPS per GPU)."""
    with transaction() as session:
        accelerators = service.accelerators(session, SYSTEM, custom=True if custom else None)
        skus = service.skus(session, SYSTEM, custom=True if custom else None)
    if as_json:
        echo_json({"accelerators": [a.to_dict() for a in accelerators], "skus": [s.to_dict() for s in skus]})
        return
    # Few, short columns, so an 80-column terminal shows them; `show ID` has the rest.
    _table(
        ("id", "bf16", "fp16", "fp8", "GB", "confidence", "custom"),
        [
            (
                a.id,
                _figure(a.tflops("bf16")),
                _figure(a.tflops("fp16")),
                _figure(a.tflops("fp8")),
                _figure(a.memory_gb),
                a.confidence,
                "yes" if a.custom else "",
            )
            for a in accelerators
        ],
    )
    _table(
        ("id", "accelerator", "GPUs", "kW", "default", "custom"),
        [
            (
                s.id,
                s.accelerator_id,
                s.gpus_per_node,
                _figure(s.typical_kw),
                "yes" if s.default else "",
                "yes" if s.custom else "",
            )
            for s in skus
        ],
    )


@catalog_app.command("show")
def catalog_show(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="accelerator or server-SKU id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show one accelerator (or, when no accelerator has the id, one server SKU) with every source."""
    with transaction() as session:
        cat = service.catalog_for(session, SYSTEM)
    entry = next((a for a in cat.accelerators if a.id == entry_id), None) or cat.sku(entry_id)
    data = entry.to_dict()
    if as_json:
        echo_json(data)
        return
    rows: list[tuple[str, str, str, str]] = []

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict) and "confidence" in value and "source" in value:
            shown = value.get("value", value.get("amount"))
            if shown is None and value.get("low") is not None:
                shown = f"{value['low']}–{value['high']}"
            if shown is not None and value.get("currency"):
                shown = f"{shown} {value['currency']}"
            rows.append((prefix, "" if shown is None else str(shown), value["confidence"], value["source"]))
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, list):
            for i, inner in enumerate(value):
                walk(f"{prefix}[{i}]", inner)
        elif value is not None:
            rows.append((prefix, str(value), "", ""))

    for key, value in data.items():  # the entry itself has a source and confidence too: not a figure
        walk(key, value)
    _table(("field", "value", "confidence", "source"), rows)


def _read_entry(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"{path} is not JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"{path} must hold one JSON object (the shape `catalog show ID --json` prints)")
    return data


@catalog_app.command("add-accelerator")
def catalog_add_accelerator(
    file: Annotated[Path, typer.Argument(help="JSON object in the shape `catalog show ID --json` prints")],
) -> None:
    """Add your own accelerator from a JSON file (stored as custom)."""
    data = _read_entry(file)
    with transaction() as session:
        entry = service.create_accelerator(session, data)
    out.print(f"accelerator {entry.id} added")


@catalog_app.command("add-sku")
def catalog_add_sku(
    file: Annotated[Path, typer.Argument(help="JSON object in the shape `catalog show ID --json` prints")],
) -> None:
    """Add your own server SKU from a JSON file (stored as custom)."""
    data = _read_entry(file)
    with transaction() as session:
        entry = service.create_sku(session, data)
    out.print(f"server SKU {entry.id} added")


@catalog_app.command("remove")
def catalog_remove(
    entry_id: Annotated[str, typer.Argument(metavar="ID")],
    sku: Annotated[bool, typer.Option("--sku", help="the id is a server SKU")] = False,
) -> None:
    """Remove one of your own entries (shipped ones stay)."""
    with transaction() as session:
        (service.delete_sku if sku else service.delete_accelerator)(session, entry_id)
    out.print(f"{'server SKU' if sku else 'accelerator'} {entry_id} removed")


def _pflops(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise BadRequest(f"--pflops must be a number, got {value!r}") from None


@capacity_app.command("convert")
def capacity_convert(
    model: Annotated[str, typer.Option(help="accelerator id, e.g. nvidia-h100-sxm")],
    pflops: Annotated[
        str | None, typer.Option(help="capacity in PFLOPS, converted to GPUs and nodes")
    ] = None,
    gpus: Annotated[int | None, typer.Option(help="whole GPUs, converted to PFLOPS and nodes")] = None,
    nodes: Annotated[int | None, typer.Option(help="whole nodes of the SKU")] = None,
    precision: Annotated[str, typer.Option(help=", ".join(PRECISIONS))] = "bf16",
    sparse: Annotated[bool, typer.Option("--sparse", help="use the with-sparsity figure")] = False,
    sku: Annotated[str | None, typer.Option(help="server SKU; the model's default when left out")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Convert capacity: GPUs are whole and rounded up, nodes by the SKU's GPUs per node."""
    with transaction() as session:
        conversion = service.convert_capacity(
            session,
            SYSTEM,
            model=model,
            pflops=_pflops(pflops),
            gpus=gpus,
            nodes=nodes,
            precision=precision,
            sparse=sparse,
            sku=sku,
        )
    warning = service.weak_warning(conversion)
    if warning:
        err.print(f"warning: {warning}")
    if as_json:
        echo_json(conversion.to_dict())
        return
    kind = "sparse" if conversion.sparse else "dense"
    delivered = "unknown" if conversion.pflops is None else f"{conversion.pflops:f}"
    node_text = (
        f"{conversion.nodes} nodes of {conversion.sku}"
        if conversion.nodes is not None
        else "nodes unknown (no SKU)"
    )
    figure = f"{delivered} PFLOPS {conversion.precision} {kind}"
    out.print(f"{conversion.gpus} × {conversion.model} = {node_text}; {figure}")
