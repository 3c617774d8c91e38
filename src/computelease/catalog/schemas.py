"""API shapes of catalog entries: the fields of :meth:`Accelerator.to_dict` and
:meth:`ServerSku.to_dict`, so the API, the CLI's ``--json`` and the stored rows agree.

Pydantic checks types only; the catalog core checks the rules (positive figures, a source and a
confidence on each, ranges with a note...) and reports every broken one at once."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]
Confidence = Literal["datasheet", "third-party", "weak"]
Origin = Literal["imported", "domestic"]
CatalogId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
        description="lowercase letters and digits joined by '-', e.g. acme-x1",
    ),
]


def _number(value: Decimal) -> int | float:
    # Figures are measurements, shown as JSON numbers like the shipped data; arithmetic stays Decimal.
    return int(value) if value == value.to_integral_value() else float(value)


Number = Annotated[Decimal, PlainSerializer(_number, return_type=int | float, when_used="json")]


class FigureModel(BaseModel):
    """One sourced number: ``value`` when known, ``low``/``high`` (with a ``note``) when sources
    disagree, or neither with a ``note`` saying it was looked for and not found."""

    model_config = ConfigDict(extra="forbid")

    value: Number | None = None
    low: Number | None = None
    high: Number | None = None
    approx: bool = False
    source: str
    confidence: Confidence
    note: str | None = None


class ThroughputModel(BaseModel):
    """TFLOPS per GPU (int8: TOPS); leave a precision out when it is unknown."""

    model_config = ConfigDict(extra="forbid")

    fp64: FigureModel | None = None
    fp32: FigureModel | None = None
    tf32: FigureModel | None = None
    bf16: FigureModel | None = None
    fp16: FigureModel | None = None
    fp8: FigureModel | None = None
    int8: FigureModel | None = None


class AcceleratorModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: CatalogId
    vendor: str
    name: str
    origin: Origin
    source: str
    confidence: Confidence
    memory_type: str | None = None
    scale_up_link: str | None = None
    memory_gb: FigureModel | None = None
    memory_bandwidth_gbs: FigureModel | None = None
    scale_up_gbs: FigureModel | None = None
    tdp_w: FigureModel | None = None
    dense: ThroughputModel = Field(default_factory=ThroughputModel)
    sparse: ThroughputModel = Field(default_factory=ThroughputModel)
    note: str | None = None
    custom: bool = Field(True, description="operators' entries are always stored as custom")


class PriceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Number
    currency: str = Field(description="ISO 4217 code, e.g. CNY")
    as_of: str | None = Field(None, description="YYYY, YYYY-MM or YYYY-MM-DD")
    approx: bool = False
    source: str
    confidence: Confidence
    note: str | None = None


class SkuModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: CatalogId
    name: str
    accelerator_id: str
    gpus_per_node: int = Field(ge=1, le=1024)
    source: str
    confidence: Confidence
    typical_kw: FigureModel | None = None
    peak_kw: FigureModel | None = None
    rack_units: FigureModel | None = None
    prices: list[PriceModel] = Field(default_factory=list)
    default: bool = Field(False, description="use this SKU for the accelerator when none is named")
    note: str | None = None
    custom: bool = Field(True, description="operators' entries are always stored as custom")


class ConvertIn(BaseModel):
    """Give exactly one of ``pflops``, ``gpus`` or ``nodes``."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="accelerator id, e.g. nvidia-h100-sxm")
    pflops: Decimal | None = Field(None, gt=0)
    gpus: int | None = Field(None, ge=1)
    nodes: int | None = Field(None, ge=1)
    precision: Precision = "bf16"
    sparse: bool = False
    sku: str | None = Field(None, description="server SKU for nodes; the model's default when left out")


class ConversionOut(BaseModel):
    model: str
    precision: str
    sparse: bool
    gpus: int
    nodes: int | None
    pflops: Number | None = Field(description="what the whole GPUs deliver")
    requested_pflops: Number | None
    tflops_per_gpu: Number | None
    confidence: Confidence | None
    source: str | None
    sku: str | None
    gpus_per_node: int | None
    warning: str | None = Field(None, description="set when the figure used is weak")
