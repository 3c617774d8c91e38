"""Accelerator and server-SKU catalog: typed records, validation, and capacity conversion.

Pure: the only I/O is :func:`load_catalog`, which reads the TOML files shipped in ``catalog/data``.
Operators' own (custom) entries use the same dataclasses with ``custom=True``; the database layer
builds them and merges them in with :meth:`Catalog.with_custom`, which validates the whole.

Every figure carries its source and a confidence, and an unknown figure stays unknown (``None``, or
a :class:`Figure` without a value that says why). Conversion never falls back on a guess. With ``T``
the per-GPU TFLOPS at the chosen precision (dense unless ``sparse``) and ``g`` GPUs per node::

    gpus   = ceil(pflops × 1000 / T)        whole GPUs, rounded up
    nodes  = ceil(gpus / g)                 whole nodes of the SKU, rounded up
    pflops = gpus × T / 1000                what those GPUs deliver

all in ``Decimal``, so a capacity that is an exact multiple of ``T`` never rounds up one GPU too many.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import ROUND_CEILING, Context, Decimal, InvalidOperation, localcontext
from importlib import resources
from typing import Any

from computelease.errors import NotFound, Unprocessable

PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8")
CONFIDENCES = ("datasheet", "third-party", "weak")
ORIGINS = ("imported", "domestic")

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AS_OF = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")
# Figures have a handful of digits; 34 keeps every product and quotient here exact.
_CONTEXT = Context(prec=34)


# ------------------------------------------------------------------------------------------ errors


class CatalogInvalid(Unprocessable):
    """The catalog data breaks a rule; ``problems`` lists every one, each with the entry and field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("catalog is invalid: " + "; ".join(self.problems), problems=list(self.problems))


class UnknownAccelerator(NotFound):
    pass


class UnknownSku(NotFound):
    pass


class ConversionError(Unprocessable):
    pass


class UnknownFigure(ConversionError):
    """The conversion needs a figure the catalog does not know (or only knows as a disputed range)."""


# ----------------------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Figure:
    """One sourced number. ``value`` is ``None`` when unknown: then either ``low``/``high`` hold the
    range over which sources disagree, or ``note`` says that it was looked for and not found."""

    value: Decimal | None
    source: str
    confidence: str
    low: Decimal | None = None
    high: Decimal | None = None
    approx: bool = False
    note: str | None = None

    @property
    def known(self) -> bool:
        return self.value is not None

    def display(self) -> str:
        prefix = "≈" if self.approx else ""
        if self.value is not None:
            return f"{prefix}{self.value:,}"
        if self.low is not None and self.high is not None:
            return f"{prefix}{self.low:,}–{self.high:,}"
        return "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _json_number(self.value),
            "low": _json_number(self.low),
            "high": _json_number(self.high),
            "approx": self.approx,
            "source": self.source,
            "confidence": self.confidence,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Throughput:
    """Per-GPU TFLOPS (int8: TOPS) by precision, each a :class:`Figure` or ``None`` when unknown."""

    fp64: Figure | None = None
    fp32: Figure | None = None
    tf32: Figure | None = None
    bf16: Figure | None = None
    fp16: Figure | None = None
    fp8: Figure | None = None
    int8: Figure | None = None

    def get(self, precision: str) -> Figure | None:
        return getattr(self, _precision(precision))

    def items(self) -> Iterator[tuple[str, Figure]]:
        for name in PRECISIONS:
            figure = getattr(self, name)
            if figure is not None:
                yield name, figure

    def to_dict(self) -> dict[str, Any]:
        return {name: (f.to_dict() if (f := getattr(self, name)) else None) for name in PRECISIONS}


_ACCELERATOR_FIGURES = ("memory_gb", "memory_bandwidth_gbs", "scale_up_gbs", "tdp_w")


@dataclass(frozen=True, slots=True)
class Accelerator:
    """A GPU/NPU model. ``source``/``confidence`` cover the descriptive fields (vendor, memory type,
    link name); each number carries its own."""

    id: str
    vendor: str
    name: str
    origin: str
    source: str
    confidence: str
    memory_type: str | None = None
    scale_up_link: str | None = None
    memory_gb: Figure | None = None
    memory_bandwidth_gbs: Figure | None = None
    scale_up_gbs: Figure | None = None
    tdp_w: Figure | None = None
    dense: Throughput = field(default_factory=Throughput)
    sparse: Throughput = field(default_factory=Throughput)
    note: str | None = None
    custom: bool = False

    def tflops(self, precision: str, *, sparse: bool = False) -> Figure | None:
        return (self.sparse if sparse else self.dense).get(precision)

    def require_tflops(self, precision: str, *, sparse: bool = False) -> Decimal:
        """The per-GPU figure, or :class:`UnknownFigure` naming the figure and the model."""
        figure = self.tflops(precision, sparse=sparse)
        if figure is not None and figure.value is not None:
            return figure.value
        label = f"{precision} {'sparse' if sparse else 'dense'} {_unit(precision)}"
        disputed = ""
        if figure is not None and figure.low is not None and figure.high is not None:
            disputed = f" (sources give {figure.low}–{figure.high}, confidence {figure.confidence})"
        raise UnknownFigure(
            f"{label} of {self.id} is unknown in the catalog{disputed}; "
            "convert by GPUs or add a measured figure",
            model=self.id,
            precision=precision,
            sparse=sparse,
        )

    def figures(self) -> Iterator[tuple[str, Figure]]:
        """Every figure present, with its field path (``dense.bf16``, ``tdp_w``…)."""
        for name in _ACCELERATOR_FIGURES:
            figure = getattr(self, name)
            if figure is not None:
                yield name, figure
        for kind in ("dense", "sparse"):
            for precision, figure in getattr(self, kind).items():
                yield f"{kind}.{precision}", figure

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the shape :func:`accelerator_from_dict` reads (unknown figures are null)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Figure | Throughput) else value
        return out


@dataclass(frozen=True, slots=True)
class Price:
    """A reference price for orientation and collateral estimates, never a settled amount."""

    amount: Decimal
    currency: str
    source: str
    confidence: str
    as_of: str | None = None
    approx: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "amount": _json_number(self.amount),
            "currency": self.currency,
            "as_of": self.as_of,
            "approx": self.approx,
            "source": self.source,
            "confidence": self.confidence,
            "note": self.note,
        }


_SKU_FIGURES = ("typical_kw", "peak_kw", "rack_units")


@dataclass(frozen=True, slots=True)
class ServerSku:
    """A server model: how many of which accelerator one node holds, its power, size and price."""

    id: str
    name: str
    accelerator_id: str
    gpus_per_node: int
    source: str
    confidence: str
    typical_kw: Figure | None = None
    peak_kw: Figure | None = None
    rack_units: Figure | None = None
    prices: tuple[Price, ...] = ()
    default: bool = False
    note: str | None = None
    custom: bool = False

    def figures(self) -> Iterator[tuple[str, Figure]]:
        for name in _SKU_FIGURES:
            figure = getattr(self, name)
            if figure is not None:
                yield name, figure

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the shape :func:`sku_from_dict` reads."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Figure):
                value = value.to_dict()
            elif f.name == "prices":
                value = [p.to_dict() for p in value]
            out[f.name] = value
        return out


# ---------------------------------------------------------------------------------------- catalog


@dataclass(frozen=True, slots=True)
class Catalog:
    """A validated set of accelerators and SKUs: constructing one that breaks a rule raises
    :class:`CatalogInvalid`, so code holding a ``Catalog`` never re-checks it."""

    accelerators: tuple[Accelerator, ...] = ()
    skus: tuple[ServerSku, ...] = ()
    _accelerator_index: dict[str, Accelerator] = field(init=False, repr=False, compare=False, hash=False)
    _sku_index: dict[str, ServerSku] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "accelerators", tuple(self.accelerators))
        object.__setattr__(self, "skus", tuple(self.skus))
        problems = validate_entries(self.accelerators, self.skus)
        if problems:
            raise CatalogInvalid(problems)
        object.__setattr__(self, "_accelerator_index", {a.id: a for a in self.accelerators})
        object.__setattr__(self, "_sku_index", {s.id: s for s in self.skus})

    def accelerator(self, accelerator_id: str) -> Accelerator:
        try:
            return self._accelerator_index[accelerator_id]
        except KeyError:
            raise UnknownAccelerator(
                f"no accelerator {accelerator_id!r} in the catalog; "
                f"known ids: {', '.join(sorted(self._accelerator_index))}"
            ) from None

    def sku(self, sku_id: str) -> ServerSku:
        try:
            return self._sku_index[sku_id]
        except KeyError:
            raise UnknownSku(
                f"no server SKU {sku_id!r} in the catalog; known ids: {', '.join(sorted(self._sku_index))}"
            ) from None

    def skus_for(self, accelerator_id: str) -> tuple[ServerSku, ...]:
        return tuple(s for s in self.skus if s.accelerator_id == accelerator_id)

    def default_sku(self, accelerator_id: str) -> ServerSku | None:
        """The SKU that turns this accelerator's GPUs into nodes when the caller names none.

        An operator's own default wins over the shipped one (it describes the servers they
        actually buy); with no default marked, a lone SKU is the default; otherwise ``None``.
        """
        self.accelerator(accelerator_id)
        candidates = self.skus_for(accelerator_id)
        for custom in (True, False):
            for sku in candidates:
                if sku.default and sku.custom is custom:
                    return sku
        return candidates[0] if len(candidates) == 1 else None

    def with_custom(
        self, accelerators: Iterable[Accelerator] = (), skus: Iterable[ServerSku] = ()
    ) -> Catalog:
        """This catalog plus an operator's entries, validated together (ids unique across both)."""
        accelerators, skus = tuple(accelerators), tuple(skus)
        problems = [
            f"{kind} {entry.id}: custom entries must have custom=True"
            for kind, entries in (("accelerator", accelerators), ("sku", skus))
            for entry in entries
            if entry.custom is not True
        ]
        if problems:
            raise CatalogInvalid(problems)
        return Catalog(self.accelerators + accelerators, self.skus + skus)


def validate_entries(
    accelerators: Sequence[Accelerator], skus: Sequence[ServerSku], *, check_references: bool = True
) -> list[str]:
    """Every rule broken by these entries, as ``"<kind> <id>: <field>: <what is wrong>"`` lines.

    ``check_references=False`` skips "the SKU's accelerator exists", for a SKU checked on its own.
    """
    problems: list[str] = []
    seen: set[str] = set()
    for acc in accelerators:
        where = f"accelerator {acc.id}"
        if acc.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(acc.id)
        problems += _id_problems(where, acc.id)
        problems += _text_problems(where, vendor=acc.vendor, name=acc.name)
        if acc.origin not in ORIGINS:
            problems.append(f"{where}: origin {acc.origin!r} is not one of {', '.join(ORIGINS)}")
        problems += _provenance_problems(where, acc.source, acc.confidence)
        problems += _bool_problems(where, custom=acc.custom)
        for path, figure in acc.figures():
            problems += _figure_problems(f"{where}: {path}", figure)
        for precision, sparse in acc.sparse.items():
            dense = acc.dense.get(precision)
            if dense and dense.value is not None and sparse.value is not None and sparse.value < dense.value:
                problems.append(f"{where}: sparse.{precision}: {sparse.value} is below dense {dense.value}")

    accelerator_ids = {a.id for a in accelerators}
    seen = set()
    defaults: dict[tuple[str, bool], str] = {}
    for sku in skus:
        where = f"sku {sku.id}"
        if sku.id in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(sku.id)
        problems += _id_problems(where, sku.id)
        problems += _text_problems(where, name=sku.name)
        problems += _provenance_problems(where, sku.source, sku.confidence)
        problems += _bool_problems(where, default=sku.default, custom=sku.custom)
        if check_references and sku.accelerator_id not in accelerator_ids:
            problems.append(f"{where}: accelerator_id {sku.accelerator_id!r} is not in the catalog")
        if isinstance(sku.gpus_per_node, bool) or not isinstance(sku.gpus_per_node, int):
            problems.append(f"{where}: gpus_per_node must be a whole number")
        elif sku.gpus_per_node < 1:
            problems.append(f"{where}: gpus_per_node must be at least 1, got {sku.gpus_per_node}")
        for path, figure in sku.figures():
            problems += _figure_problems(f"{where}: {path}", figure)
        for i, price in enumerate(sku.prices):
            problems += _price_problems(f"{where}: prices[{i}]", price)
        if sku.default is True:
            key = (sku.accelerator_id, bool(sku.custom))
            if key in defaults:
                problems.append(
                    f"{where}: a second default SKU for {sku.accelerator_id} (already {defaults[key]})"
                )
            defaults.setdefault(key, sku.id)
    return problems


def _id_problems(where: str, value: object) -> list[str]:
    if isinstance(value, str) and _ID.match(value):
        return []
    return [f"{where}: id must be lowercase letters and digits joined by '-', got {value!r}"]


def _text_problems(where: str, **texts: object) -> list[str]:
    return [
        f"{where}: {name} is empty"
        for name, value in texts.items()
        if not isinstance(value, str) or not value.strip()
    ]


def _bool_problems(where: str, **flags: object) -> list[str]:
    return [f"{where}: {name} must be true or false" for name, v in flags.items() if not isinstance(v, bool)]


def _provenance_problems(where: str, source: object, confidence: object) -> list[str]:
    problems = []
    if not isinstance(source, str) or not source.strip():
        problems.append(f"{where}: source is empty")
    if confidence not in CONFIDENCES:
        problems.append(f"{where}: confidence {confidence!r} is not one of {', '.join(CONFIDENCES)}")
    return problems


def _figure_problems(where: str, figure: Figure) -> list[str]:
    problems = _provenance_problems(where, figure.source, figure.confidence)
    problems += _bool_problems(where, approx=figure.approx)
    has_range = figure.low is not None or figure.high is not None
    for name in ("value", "low", "high"):
        number = getattr(figure, name)
        if number is not None and (not isinstance(number, Decimal) or not number.is_finite() or number <= 0):
            problems.append(f"{where}: {name} must be a positive number, got {number!r}")
    if figure.value is not None and has_range:
        problems.append(f"{where}: give either value or low/high, not both")
    elif has_range:
        if figure.low is None or figure.high is None:
            problems.append(f"{where}: a range needs both low and high")
        elif _ordered(figure.low, figure.high) is False:
            problems.append(f"{where}: low {figure.low} must be below high {figure.high}")
        # A disputed figure must say why, or it reads like a sloppy value.
        if not figure.note:
            problems.append(f"{where}: a range needs a note saying why the figure is disputed")
    elif figure.value is None and not figure.note:
        problems.append(f"{where}: a figure without a value needs a note (or leave the figure out)")
    return problems


def _ordered(low: object, high: object) -> bool | None:
    """Whether low < high; ``None`` when either is not a number (reported elsewhere)."""
    if isinstance(low, Decimal) and isinstance(high, Decimal) and low.is_finite() and high.is_finite():
        return low < high
    return None


def _price_problems(where: str, price: Price) -> list[str]:
    problems = _provenance_problems(where, price.source, price.confidence)
    problems += _bool_problems(where, approx=price.approx)
    if not isinstance(price.amount, Decimal) or not price.amount.is_finite() or price.amount <= 0:
        problems.append(f"{where}: amount must be a positive number, got {price.amount!r}")
    if not isinstance(price.currency, str) or not _CURRENCY.match(price.currency):
        problems.append(f"{where}: currency must be an ISO 4217 code (CNY, USD…), got {price.currency!r}")
    if price.as_of is not None and (not isinstance(price.as_of, str) or not _AS_OF.match(price.as_of)):
        problems.append(f"{where}: as_of must be YYYY, YYYY-MM or YYYY-MM-DD, got {price.as_of!r}")
    return problems


# ------------------------------------------------------------------------------- parsing raw data

_FIGURE_KEYS = {"value", "low", "high", "approx", "source", "confidence", "note"}
_PRICE_KEYS = {"amount", "currency", "as_of", "approx", "source", "confidence", "note"}
_ACCELERATOR_KEYS = {f.name for f in fields(Accelerator)}
_SKU_KEYS = {f.name for f in fields(ServerSku)}


class _Reader:
    """Turns raw mappings (TOML, JSON) into records, collecting every problem instead of stopping
    at the first: a data file with three typos should say so once, not in three rounds."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def table(self, where: str, raw: object, allowed: set[str]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            self.problems.append(f"{where}: expected a table, got {type(raw).__name__}")
            return {}
        # Unknown keys are almost always typos (`confidance`, `bf61`) that would drop a figure silently.
        for key in sorted(set(raw) - allowed):
            self.problems.append(f"{where}: unknown key {key!r}")
        return {k: v for k, v in raw.items() if v is not None}

    def text(self, where: str, raw: Mapping[str, Any], key: str, *, required: bool = False) -> Any:
        value = raw.get(key)
        if value is None:
            if required:
                self.problems.append(f"{where}: {key} is missing")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{where}: {key} must be text, got {value!r}")
        return value

    def flag(self, where: str, raw: Mapping[str, Any], key: str) -> Any:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            self.problems.append(f"{where}: {key} must be true or false, got {value!r}")
        return value

    def number(self, where: str, raw: Mapping[str, Any], key: str) -> Decimal | None:
        value = raw.get(key)
        if value is None:
            return None
        number = _to_decimal(value)
        if number is None:
            self.problems.append(f"{where}: {key} must be a number, got {value!r}")
        return number

    def figure(self, where: str, raw: object) -> Figure | None:
        if raw is None:
            return None
        data = self.table(where, raw, _FIGURE_KEYS)
        return Figure(
            value=self.number(where, data, "value"),
            low=self.number(where, data, "low"),
            high=self.number(where, data, "high"),
            approx=self.flag(where, data, "approx"),
            source=self.text(where, data, "source", required=True),
            confidence=self.text(where, data, "confidence", required=True),
            note=self.text(where, data, "note"),
        )

    def throughput(self, where: str, raw: object) -> Throughput:
        if raw is None:
            return Throughput()
        data = self.table(where, raw, set(PRECISIONS))
        return Throughput(**{p: self.figure(f"{where}.{p}", data.get(p)) for p in PRECISIONS if p in data})

    def price(self, where: str, raw: object) -> Price:
        data = self.table(where, raw, _PRICE_KEYS)
        as_of = data.get("as_of")
        if isinstance(as_of, date):
            as_of = as_of.isoformat()
        amount = self.number(where, data, "amount")
        if amount is None and "amount" not in data:
            self.problems.append(f"{where}: amount is missing")
        return Price(
            amount=amount,
            currency=self.text(where, data, "currency", required=True),
            as_of=as_of,
            approx=self.flag(where, data, "approx"),
            source=self.text(where, data, "source", required=True),
            confidence=self.text(where, data, "confidence", required=True),
            note=self.text(where, data, "note"),
        )


def _accelerator(reader: _Reader, raw: object, entry_id: object) -> Accelerator:
    where = f"accelerator {entry_id}"
    data = reader.table(where, raw, _ACCELERATOR_KEYS)
    if "id" in data and data["id"] != entry_id:
        reader.problems.append(f"{where}: id {data['id']!r} does not match the table name")
    return Accelerator(
        id=entry_id,
        vendor=reader.text(where, data, "vendor", required=True),
        name=reader.text(where, data, "name", required=True),
        origin=reader.text(where, data, "origin", required=True),
        source=reader.text(where, data, "source", required=True),
        confidence=reader.text(where, data, "confidence", required=True),
        memory_type=reader.text(where, data, "memory_type"),
        scale_up_link=reader.text(where, data, "scale_up_link"),
        note=reader.text(where, data, "note"),
        custom=reader.flag(where, data, "custom"),
        dense=reader.throughput(f"{where}: dense", data.get("dense")),
        sparse=reader.throughput(f"{where}: sparse", data.get("sparse")),
        **{name: reader.figure(f"{where}: {name}", data.get(name)) for name in _ACCELERATOR_FIGURES},
    )


def _sku(reader: _Reader, raw: object, entry_id: object) -> ServerSku:
    where = f"sku {entry_id}"
    data = reader.table(where, raw, _SKU_KEYS)
    if "id" in data and data["id"] != entry_id:
        reader.problems.append(f"{where}: id {data['id']!r} does not match the table name")
    gpus = data.get("gpus_per_node")
    if gpus is None:
        reader.problems.append(f"{where}: gpus_per_node is missing")
    prices = data.get("prices", [])
    if not isinstance(prices, list):
        reader.problems.append(f"{where}: prices must be a list of tables")
        prices = []
    return ServerSku(
        id=entry_id,
        name=reader.text(where, data, "name", required=True),
        accelerator_id=reader.text(where, data, "accelerator_id", required=True),
        gpus_per_node=gpus,
        source=reader.text(where, data, "source", required=True),
        confidence=reader.text(where, data, "confidence", required=True),
        default=reader.flag(where, data, "default"),
        note=reader.text(where, data, "note"),
        custom=reader.flag(where, data, "custom"),
        prices=tuple(reader.price(f"{where}: prices[{i}]", p) for i, p in enumerate(prices)),
        **{name: reader.figure(f"{where}: {name}", data.get(name)) for name in _SKU_FIGURES},
    )


def accelerator_from_dict(data: Mapping[str, Any]) -> Accelerator:
    """An accelerator from the shape :meth:`Accelerator.to_dict` writes (and an API body or a
    database JSON column holds); raises :class:`CatalogInvalid` listing every problem."""
    reader = _Reader()
    accelerator = _accelerator(reader, data, data.get("id") if isinstance(data, Mapping) else None)
    problems = reader.problems or validate_entries([accelerator], [])
    if problems:
        raise CatalogInvalid(problems)
    return accelerator


def sku_from_dict(data: Mapping[str, Any]) -> ServerSku:
    """A server SKU from the shape :meth:`ServerSku.to_dict` writes. Whether its accelerator
    exists is checked when it joins a catalog (:meth:`Catalog.with_custom`)."""
    reader = _Reader()
    sku = _sku(reader, data, data.get("id") if isinstance(data, Mapping) else None)
    problems = reader.problems or validate_entries([], [sku], check_references=False)
    if problems:
        raise CatalogInvalid(problems)
    return sku


def build_catalog(accelerators: Mapping[str, Any], servers: Mapping[str, Any]) -> Catalog:
    """A catalog from the two shipped documents (tables keyed by id), validated as a whole."""
    reader = _Reader()
    accs = [_accelerator(reader, raw, key) for key, raw in accelerators.items()]
    skus = [_sku(reader, raw, key) for key, raw in servers.items()]
    for entry in (*accs, *skus):
        if entry.custom is True:
            kind = "accelerator" if isinstance(entry, Accelerator) else "sku"
            reader.problems.append(f"{kind} {entry.id}: shipped entries cannot be custom")
    if reader.problems:
        raise CatalogInvalid(reader.problems)
    return Catalog(tuple(accs), tuple(skus))


@functools.cache
def load_catalog() -> Catalog:
    """The shipped catalog, read and validated once per process."""
    data = resources.files("computelease.catalog") / "data"
    # parse_float=Decimal: 989.4 must stay 989.4, not the nearest binary float.
    accelerators, servers = (
        tomllib.loads((data / name).read_text(encoding="utf-8"), parse_float=Decimal)
        for name in ("accelerators.toml", "servers.toml")
    )
    return build_catalog(accelerators, servers)


# ------------------------------------------------------------------------------------- conversion


@dataclass(frozen=True, slots=True)
class Conversion:
    """A capacity expressed three ways. ``pflops`` is what the whole ``gpus`` deliver (at least the
    requested amount, when converting from PFLOPS); it is ``None`` when the figure is unknown and the
    conversion started from GPUs or nodes. ``nodes`` is ``None`` when no SKU is known."""

    model: str
    precision: str
    sparse: bool
    gpus: int
    nodes: int | None
    pflops: Decimal | None
    requested_pflops: Decimal | None
    tflops_per_gpu: Decimal | None
    figure: Figure | None
    sku: str | None
    gpus_per_node: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "precision": self.precision,
            "sparse": self.sparse,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "pflops": _json_number(self.pflops),
            "requested_pflops": _json_number(self.requested_pflops),
            "tflops_per_gpu": _json_number(self.tflops_per_gpu),
            "confidence": self.figure.confidence if self.figure else None,
            "source": self.figure.source if self.figure else None,
            "sku": self.sku,
            "gpus_per_node": self.gpus_per_node,
        }


def convert(
    model: str,
    *,
    pflops: Decimal | int | str | float | None = None,
    gpus: int | None = None,
    nodes: int | None = None,
    precision: str = "bf16",
    sparse: bool = False,
    sku: str | None = None,
    catalog: Catalog | None = None,
) -> Conversion:
    """Convert one of ``pflops``, ``gpus`` or ``nodes`` of ``model`` into the other two.

    From PFLOPS the per-GPU figure must be known (else :class:`UnknownFigure`, 422). From GPUs or
    nodes an unknown figure only leaves ``pflops`` as ``None``. Nodes use ``sku`` or the model's
    default SKU. The figure used is returned with its confidence, so a caller can warn when it is weak.
    """
    given = [name for name, v in (("pflops", pflops), ("gpus", gpus), ("nodes", nodes)) if v is not None]
    if len(given) != 1:
        raise ConversionError(f"give exactly one of pflops, gpus or nodes (got {', '.join(given) or 'none'})")
    try:
        precision = _precision(precision)
    except ValueError as exc:
        raise ConversionError(str(exc)) from None
    catalog = catalog if catalog is not None else load_catalog()
    accelerator = catalog.accelerator(model)
    server = catalog.sku(sku) if sku is not None else catalog.default_sku(model)
    if server is not None and server.accelerator_id != accelerator.id:
        raise ConversionError(f"SKU {server.id} holds {server.accelerator_id}, not {accelerator.id}")
    figure = accelerator.tflops(precision, sparse=sparse)
    per_gpu = figure.value if figure is not None else None

    requested: Decimal | None = None
    with localcontext(_CONTEXT):
        if pflops is not None:
            requested = _positive_decimal(pflops, "pflops")
            per_gpu = accelerator.require_tflops(precision, sparse=sparse)
            count = int((requested * 1000 / per_gpu).to_integral_value(rounding=ROUND_CEILING))
        elif gpus is not None:
            count = _positive_int(gpus, "gpus")
        else:
            if server is None:
                raise ConversionError(
                    f"no server SKU is known for {accelerator.id}, so nodes cannot become GPUs; "
                    "name a SKU or convert by GPUs"
                )
            count = _positive_int(nodes, "nodes") * server.gpus_per_node
        delivered = count * per_gpu / 1000 if per_gpu is not None else None

    return Conversion(
        model=accelerator.id,
        precision=precision,
        sparse=sparse,
        gpus=count,
        nodes=-(-count // server.gpus_per_node) if server is not None else None,
        pflops=delivered,
        requested_pflops=requested,
        tflops_per_gpu=per_gpu,
        figure=figure,
        sku=server.id if server is not None else None,
        gpus_per_node=server.gpus_per_node if server is not None else None,
    )


# ---------------------------------------------------------------------------------------- helpers


def _precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


def _unit(precision: str) -> str:
    return "TOPS" if precision == "int8" else "TFLOPS"


def _to_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None
    elif isinstance(value, float):
        # str() gives the shortest repr that round-trips, so 1545.4428 stays 1545.4428.
        number = Decimal(str(value))
    else:
        return None
    return number if number.is_finite() else None


def _positive_decimal(value: object, name: str) -> Decimal:
    number = _to_decimal(value)
    if number is None or number <= 0:
        raise ConversionError(f"{name} must be a positive number, got {value!r}")
    return number


def _positive_int(value: object, name: str) -> int:
    number = _to_decimal(value)
    if number is None or number <= 0 or number != number.to_integral_value():
        raise ConversionError(f"{name} must be a positive whole number, got {value!r}")
    return int(number)


def _json_number(value: Decimal | None) -> int | float | None:
    """For display and JSON only; arithmetic stays on the Decimal attributes."""
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


__all__ = [
    "CONFIDENCES",
    "ORIGINS",
    "PRECISIONS",
    "Accelerator",
    "Catalog",
    "CatalogInvalid",
    "Conversion",
    "ConversionError",
    "Figure",
    "Price",
    "ServerSku",
    "Throughput",
    "UnknownAccelerator",
    "UnknownFigure",
    "UnknownSku",
    "accelerator_from_dict",
    "build_catalog",
    "convert",
    "load_catalog",
    "sku_from_dict",
    "validate_entries",
]
