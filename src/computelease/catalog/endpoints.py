"""Catalog API: read by every role, extended by staff, and capacity conversion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from computelease.auth.deps import Caller, Session, Staff
from computelease.catalog import service
from computelease.catalog.schemas import AcceleratorModel, ConversionOut, ConvertIn, Origin, SkuModel
from computelease.kit.pagination import Page, Paging

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get(
    "/accelerators", response_model=Page[AcceleratorModel], summary="Accelerators, shipped and custom"
)
def list_accelerators(
    session: Session,
    caller: Caller,
    paging: Paging,
    vendor: Annotated[str | None, Query(description="e.g. NVIDIA, Huawei")] = None,
    origin: Origin | None = None,
    custom: Annotated[bool | None, Query(description="only custom (true) or only shipped (false)")] = None,
) -> Page[AcceleratorModel]:
    rows = service.accelerators(session, caller, vendor=vendor, origin=origin, custom=custom)
    items = [a.to_dict() for a in rows[paging.offset : paging.offset + paging.limit]]
    return Page(items=items, total=len(rows), limit=paging.limit, offset=paging.offset)


@router.post("/accelerators", response_model=AcceleratorModel, status_code=status.HTTP_201_CREATED)
def create_accelerator(session: Session, caller: Staff, data: AcceleratorModel) -> dict:
    """Add your own accelerator (stored as custom). Every figure needs a source and a confidence;
    leave unknown figures out rather than guessing."""
    return service.create_accelerator(session, data.model_dump(mode="json")).to_dict()


@router.get("/accelerators/{accelerator_id}", response_model=AcceleratorModel)
def get_accelerator(session: Session, caller: Caller, accelerator_id: str) -> dict:
    return service.accelerator(session, caller, accelerator_id).to_dict()


@router.delete("/accelerators/{accelerator_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_accelerator(session: Session, caller: Staff, accelerator_id: str) -> None:
    service.delete_accelerator(session, accelerator_id)


@router.get("/skus", response_model=Page[SkuModel], summary="Server SKUs, shipped and custom")
def list_skus(
    session: Session,
    caller: Caller,
    paging: Paging,
    accelerator_id: Annotated[str | None, Query(description="only SKUs holding this accelerator")] = None,
    custom: Annotated[bool | None, Query(description="only custom (true) or only shipped (false)")] = None,
) -> Page[SkuModel]:
    rows = service.skus(session, caller, accelerator_id=accelerator_id, custom=custom)
    items = [s.to_dict() for s in rows[paging.offset : paging.offset + paging.limit]]
    return Page(items=items, total=len(rows), limit=paging.limit, offset=paging.offset)


@router.post("/skus", response_model=SkuModel, status_code=status.HTTP_201_CREATED)
def create_sku(session: Session, caller: Staff, data: SkuModel) -> dict:
    """Add your own server SKU (stored as custom); its accelerator may be shipped or custom."""
    return service.create_sku(session, data.model_dump(mode="json")).to_dict()


@router.get("/skus/{sku_id}", response_model=SkuModel)
def get_sku(session: Session, caller: Caller, sku_id: str) -> dict:
    return service.sku(session, caller, sku_id).to_dict()


@router.delete("/skus/{sku_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sku(session: Session, caller: Staff, sku_id: str) -> None:
    service.delete_sku(session, sku_id)


@router.post(
    "/convert", response_model=ConversionOut, summary="Convert capacity between PFLOPS, GPUs and nodes"
)
def convert(session: Session, caller: Caller, data: ConvertIn) -> dict:
    """GPUs are whole and rounded up; nodes by the SKU's GPUs per node. Converting from PFLOPS needs
    the model's figure at that precision: an unknown one is a 422 that names it."""
    conversion = service.convert_capacity(
        session,
        caller,
        model=data.model,
        pflops=data.pflops,
        gpus=data.gpus,
        nodes=data.nodes,
        precision=data.precision,
        sparse=data.sparse,
        sku=data.sku,
    )
    return {**conversion.to_dict(), "warning": service.weak_warning(conversion)}
