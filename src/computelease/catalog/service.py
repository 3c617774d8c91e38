"""Catalog use cases: the shipped catalog merged with the operator's own entries.

Every read goes through :func:`catalog_for`. The catalog is reference data (specs, not tenants'
records): every authenticated role reads all of it, because customers contract and lessors value
collateral in its units. Only staff add or remove entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from computelease.auth.core import Principal
from computelease.catalog.core import (
    Accelerator,
    Catalog,
    Conversion,
    ServerSku,
    accelerator_from_dict,
    convert,
    load_catalog,
    sku_from_dict,
)
from computelease.catalog.models import CustomAccelerator, CustomSku
from computelease.errors import Conflict, NotFound


def catalog(session: Session) -> Catalog:
    """Shipped entries plus the stored custom ones, validated together."""
    accelerators = [
        accelerator_from_dict(row.data)
        for row in session.scalars(select(CustomAccelerator).order_by(CustomAccelerator.id))
    ]
    skus = [sku_from_dict(row.data) for row in session.scalars(select(CustomSku).order_by(CustomSku.id))]
    return load_catalog().with_custom(accelerators, skus)


def catalog_for(session: Session, principal: Principal) -> Catalog:
    """The catalog this caller may read: all of it, for every role (see the module docstring)."""
    return catalog(session)


def accelerators(
    session: Session,
    principal: Principal,
    *,
    vendor: str | None = None,
    origin: str | None = None,
    custom: bool | None = None,
) -> list[Accelerator]:
    return [
        a
        for a in catalog_for(session, principal).accelerators
        if (vendor is None or a.vendor.lower() == vendor.lower())
        and (origin is None or a.origin == origin)
        and (custom is None or a.custom is custom)
    ]


def skus(
    session: Session,
    principal: Principal,
    *,
    accelerator_id: str | None = None,
    custom: bool | None = None,
) -> list[ServerSku]:
    return [
        s
        for s in catalog_for(session, principal).skus
        if (accelerator_id is None or s.accelerator_id == accelerator_id)
        and (custom is None or s.custom is custom)
    ]


def accelerator(session: Session, principal: Principal, accelerator_id: str) -> Accelerator:
    return catalog_for(session, principal).accelerator(accelerator_id)


def sku(session: Session, principal: Principal, sku_id: str) -> ServerSku:
    return catalog_for(session, principal).sku(sku_id)


def _as_custom(data: Mapping[str, Any]) -> dict[str, Any]:
    # Operators' entries are custom whatever the body says; shipped ones come only from the data files.
    return {**data, "custom": True}


def create_accelerator(session: Session, data: Mapping[str, Any]) -> Accelerator:
    """Adds an operator's accelerator; ``data`` has the shape :meth:`Accelerator.to_dict` writes."""
    entry = accelerator_from_dict(_as_custom(data))
    current = catalog(session)
    if any(a.id == entry.id for a in current.accelerators):
        where = "a custom" if session.get(CustomAccelerator, entry.id) else "a shipped"
        raise Conflict(f"accelerator {entry.id!r} is already {where} catalog entry; pick another id")
    current.with_custom([entry])  # validates the whole catalog with the new entry in it
    session.add(CustomAccelerator(id=entry.id, data=entry.to_dict()))
    session.flush()
    return entry


def create_sku(session: Session, data: Mapping[str, Any]) -> ServerSku:
    """Adds an operator's server SKU; its accelerator may be shipped or custom."""
    entry = sku_from_dict(_as_custom(data))
    current = catalog(session)
    if any(s.id == entry.id for s in current.skus):
        where = "a custom" if session.get(CustomSku, entry.id) else "a shipped"
        raise Conflict(f"server SKU {entry.id!r} is already {where} catalog entry; pick another id")
    current.with_custom(skus=[entry])  # the accelerator exists, at most one custom default per model
    session.add(CustomSku(id=entry.id, accelerator_id=entry.accelerator_id, data=entry.to_dict()))
    session.flush()
    return entry


def _custom_row(session: Session, model: type, kind: str, entry_id: str) -> Any:
    row = session.get(model, entry_id)
    if row is not None:
        return row
    shipped = load_catalog()
    known = (
        {a.id for a in shipped.accelerators} if model is CustomAccelerator else {s.id for s in shipped.skus}
    )
    if entry_id in known:
        raise Conflict(
            f"{kind} {entry_id!r} is shipped with computelease; only custom entries can be removed"
        )
    raise NotFound(f"no custom {kind} {entry_id!r}")


def delete_accelerator(session: Session, accelerator_id: str) -> None:
    row = _custom_row(session, CustomAccelerator, "accelerator", accelerator_id)
    using = session.scalars(select(CustomSku.id).where(CustomSku.accelerator_id == accelerator_id)).all()
    if using:
        raise Conflict(
            f"accelerator {accelerator_id!r} is used by the SKUs {', '.join(using)}; remove them first"
        )
    session.delete(row)
    session.flush()


def delete_sku(session: Session, sku_id: str) -> None:
    row = _custom_row(session, CustomSku, "server SKU", sku_id)
    # The fleet is downstream of the catalog; imported here so the catalog never needs it otherwise.
    from computelease.fleet.models import Node

    if session.scalar(select(Node.id).where(Node.sku_id == sku_id).limit(1)) is not None:
        raise Conflict(f"server SKU {sku_id!r} is used by nodes of the fleet; it cannot be removed")
    session.delete(row)
    session.flush()


def weak_warning(conversion: Conversion) -> str | None:
    """A one-line warning when the conversion rests on a weak figure, else ``None``."""
    figure = conversion.figure
    if conversion.pflops is None or figure is None or figure.confidence != "weak":
        return None
    kind = "sparse" if conversion.sparse else "dense"
    return (
        f"the {conversion.precision} {kind} figure of {conversion.model} is weak ({figure.source}); "
        "treat the result as an estimate"
    )


def convert_capacity(
    session: Session,
    principal: Principal,
    *,
    model: str,
    pflops: Decimal | int | str | None = None,
    gpus: int | None = None,
    nodes: int | None = None,
    precision: str = "bf16",
    sparse: bool = False,
    sku: str | None = None,
) -> Conversion:
    """:func:`computelease.catalog.core.convert` over the merged catalog (custom SKUs and models too)."""
    return convert(
        model,
        pflops=pflops,
        gpus=gpus,
        nodes=nodes,
        precision=precision,
        sparse=sparse,
        sku=sku,
        catalog=catalog_for(session, principal),
    )
