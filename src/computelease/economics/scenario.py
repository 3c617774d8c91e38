"""The scenario file: what a compute-leasing business buys, sells, spends and borrows, in one YAML document.

The schema is documented in ``docs/scenarios.md``. Parsing has two passes, and each reports every problem
it finds, each with the path of the field (``funding.direct_lease.rate``, ``fleet[2].site``):

1. Pydantic checks each field's type and range (``extra="forbid"``: a misspelt key is an error, not a
   silently ignored default).
2. :func:`check` checks what depends on several fields or on the catalog: a purchase's site exists, a
   contract's PFLOPS convert to GPUs, a loan's terms pass the finance core, dates fall in the horizon.

Amounts and rates are ``Decimal`` (YAML floats are read through ``str`` so that 0.06 stays 0.06): the
lease schedules built from them by the finance core are exact. The projections that use them are floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from computelease.errors import NotFound, Unprocessable

ROUTES = ("own", "bank", "direct_lease", "sale_leaseback")
INSTRUMENTS = ("bank", "direct_lease", "sale_leaseback")
Route = Literal["own", "bank", "direct_lease", "sale_leaseback"]


class ScenarioInvalid(Unprocessable):
    """The scenario breaks a rule. ``problems`` are ``"path: what is wrong"`` lines; the detail joins them
    on one line, so the CLI prints one line and the API one problem document."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = tuple(problems)
        prefix = f"{source}: " if source else ""
        super().__init__(prefix + "; ".join(self.problems), problems=list(self.problems))


# --------------------------------------------------------------------------------------- field types


def _number(value: object) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise PydanticCustomError("number", "must be a number, got {got}", {"got": repr(value)})
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        number = Decimal(str(value))
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise PydanticCustomError("number", "must be a number, got {got}", {"got": repr(value)}) from None
    else:
        raise PydanticCustomError("number", "must be a number, got {got}", {"got": repr(value)})
    if not number.is_finite():
        raise PydanticCustomError("number", "must be a finite number, got {got}", {"got": repr(value)})
    return number


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise PydanticCustomError("non_negative", "must not be negative, got {got}", {"got": str(value)})
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise PydanticCustomError("positive", "must be more than 0, got {got}", {"got": str(value)})
    return value


def _fraction(example: str, *, one: bool = False) -> Any:
    """A fraction of one: ``[0, 1)``, or ``[0, 1]`` with ``one``. A value like 6 gets the hint 0.06."""

    def check(value: Decimal) -> Decimal:
        if value < 0 or value > 1 or (value == 1 and not one):
            hint = ""
            if 1 <= value <= 100:
                hint = f"; for {value}% write {(value / 100).normalize()}"
            raise PydanticCustomError(
                "fraction",
                "must be a fraction like {example} (got {got}{hint})",
                {"example": example, "got": str(value), "hint": hint},
            )
        return value

    return Annotated[Decimal, BeforeValidator(_number), AfterValidator(check)]


def _change(value: Decimal) -> Decimal:
    if not Decimal(-1) < value < Decimal(1):
        raise PydanticCustomError(
            "change",
            "must be a fractional change between -1 and 1 like -0.2 (got {got})",
            {"got": str(value)},
        )
    return value


def _whole(minimum: int, maximum: int | None = None) -> Any:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise PydanticCustomError("whole", "must be a whole number, got {got}", {"got": repr(value)})
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise PydanticCustomError(
                "whole", "must be a whole number, got {got}", {"got": repr(value)}
            ) from None
        if not number.is_finite() or number != number.to_integral_value():
            raise PydanticCustomError("whole", "must be a whole number, got {got}", {"got": repr(value)})
        if number < minimum:
            raise PydanticCustomError(
                "whole", "must be at least {minimum}, got {got}", {"minimum": minimum, "got": str(number)}
            )
        if maximum is not None and number > maximum:
            raise PydanticCustomError(
                "whole", "must be at most {maximum}, got {got}", {"maximum": maximum, "got": str(number)}
            )
        return int(number)

    return Annotated[int, BeforeValidator(check)]


def _currency(value: object) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha() or not value.isupper():
        raise PydanticCustomError(
            "currency", "must be an ISO 4217 code like CNY or USD, got {got}", {"got": repr(value)}
        )
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("text", "must be non-empty text, got {got}", {"got": repr(value)})
    return value.strip()


def _pue(value: Decimal) -> Decimal:
    if not Decimal(1) <= value <= Decimal(3):
        raise PydanticCustomError(
            "pue",
            "must be between 1 and 3 (power usage effectiveness, e.g. 1.3), got {got}",
            {"got": str(value)},
        )
    return value


def _correlation(value: Decimal) -> Decimal:
    if not Decimal(-1) <= value <= Decimal(1):
        raise PydanticCustomError("correlation", "must be between -1 and 1, got {got}", {"got": str(value)})
    return value


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


Amount = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_non_negative)]
Positive = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_positive)]
Change = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_change)]
Pue = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_pue)]
Correlation = Annotated[Decimal, BeforeValidator(_number), AfterValidator(_correlation)]
Rate = _fraction("0.06")
Share = _fraction("0.7", one=True)
Probability = _fraction("0.85", one=True)
Count = _whole(1)
Months = _whole(1)
Lag = _whole(0)
Horizon = _whole(1, 600)
Currency = Annotated[str, BeforeValidator(_currency)]
Text = Annotated[str, BeforeValidator(_text)]
Precision = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exactly_one(model: BaseModel, names: Sequence[str]) -> None:
    given = [name for name in names if getattr(model, name) is not None]
    if len(given) != 1:
        raise PydanticCustomError(
            "exactly_one",
            "give exactly one of {names} (got {given})",
            {"names": ", ".join(names), "given": ", ".join(given) or "none"},
        )


# ------------------------------------------------------------------------------------------ sections


class Site(_Model):
    """A data centre. Costs are VAT-exclusive; their input VAT is not modelled (a conservative
    simplification: it would lower the VAT paid)."""

    id: Text
    rack_per_node_month: Amount = Decimal(0)
    power_price_kwh: Amount
    pue: Pue
    om_per_node_month: Amount = Decimal(0)
    insurance_rate: Rate = Decimal(0)  # a year, of the equipment's VAT-exclusive cost
    idle_power_fraction: Share = Decimal(1)  # share of the typical draw an unrented node still draws


class Purchase(_Model):
    sku: Text
    count: Count  # nodes
    unit_price: Amount | None = None  # per node; the catalog's reference price when left out
    currency: Currency | None = None  # the scenario's currency when left out
    date: dt.date  # paid on this date
    site: Text
    in_service_months: Lag = 1  # months from payment to service (delivery, racking, acceptance)
    kw_per_node: Positive | None = None  # IT load; the catalog's typical_kw when left out


class Capacity(_Model):
    gpus: Count | None = None
    nodes: Count | None = None
    pflops: Positive | None = None
    precision: Precision = "bf16"
    sparse: bool = False
    sku: Text | None = None

    @model_validator(mode="after")
    def _one(self) -> Capacity:
        _exactly_one(self, ("gpus", "nodes", "pflops"))
        return self


class ContractPrice(_Model):
    per_gpu_hour: Amount | None = None
    per_server_month: Amount | None = None
    total: Amount | None = None  # the contract's whole value, spread evenly over its months

    @model_validator(mode="after")
    def _one(self) -> ContractPrice:
        _exactly_one(self, ("per_gpu_hour", "per_server_month", "total"))
        return self


class SlaTier(_Model):
    below: Probability  # monthly availability below this ...
    credit: Share  # ... credits this share of the month's fee


class Contract(_Model):
    name: Text
    customer: str | None = None
    status: Literal["signed", "pipeline"] = "signed"
    win_probability: Probability | None = None
    accelerator: Text
    capacity: Capacity
    price: ContractPrice
    start: dt.date
    months: Months
    sla: list[SlaTier] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pipeline(self) -> Contract:
        if self.status == "pipeline" and self.win_probability is None:
            raise PydanticCustomError("win", "a pipeline contract needs win_probability, e.g. 0.5", {})
        if self.status == "signed" and self.win_probability not in (None, Decimal(1)):
            raise PydanticCustomError(
                "win", "a signed contract has no win_probability; use status: pipeline", {}
            )
        return self

    @property
    def probability(self) -> Decimal:
        return Decimal(1) if self.win_probability is None else self.win_probability


class Launch(_Model):
    date: dt.date
    step: Change  # the price's change when the generation ships, e.g. -0.2


class MarketPrice(_Model):
    accelerator: Text
    per_gpu_hour: Amount | None = None
    per_server_month: Amount | None = None
    annual_drift: Change = Decimal(0)
    launches: list[Launch] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one(self) -> MarketPrice:
        _exactly_one(self, ("per_gpu_hour", "per_server_month"))
        return self


class ResidualPoint(_Model):
    age_months: Lag
    value: Share  # market value as a share of the VAT-exclusive purchase cost


class Market(_Model):
    prices: list[MarketPrice] = Field(default_factory=list)
    occupancy: Probability  # long-run occupancy of uncontracted capacity
    occupancy_start: Probability | None = None
    reversion_per_month: Probability = Decimal("0.2")  # share of the gap to the long run closed each month
    failures_per_1000_gpu_days: Amount = Decimal(0)
    repair_hours: Amount = Decimal(0)
    failure_scope: Literal["node", "gpu"] = "node"
    residual: list[ResidualPoint] = Field(default_factory=list)


class Risk(_Model):
    """Monte Carlo volatilities. Left out, they are zero: only failures and pipeline wins vary, since those
    follow from facts already in the file (failure rate, win probability)."""

    occupancy_vol: Amount = Decimal(0)  # sd of the monthly shock to logit(occupancy)
    price_vol: Amount = Decimal(0)  # sd of the monthly log-price shock
    launch_vol: Amount = Decimal(0)  # sd of the log size of each launch step-down
    residual_vol: Amount = Decimal(0)  # sd of the log residual value, once per path
    price_occupancy_correlation: Correlation = Decimal(0)
    failures: Literal["poisson", "expected"] = "poisson"
    pipeline: Literal["draw", "expected"] = "draw"
    recovery_rate: Share = Decimal(1)  # share of the collateral's market value a lessor recovers


class Financing(_Model):
    share: Share | None = None  # of each purchase's VAT-inclusive price, financed at its date
    amount: Positive | None = None  # or one amount, at ``date`` (default: the first purchase)
    date: dt.date | None = None
    rate: Rate  # nominal annual
    months: Months
    method: Literal["annuity", "equal_principal", "interest_only"] = "annuity"
    timing: Literal["arrears", "advance"] = "arrears"
    frequency: Literal["monthly", "quarterly", "semi_annual"] = "monthly"
    grace_months: Lag = 0
    fee_rate: Rate = Decimal(0)
    deposit_rate: Rate = Decimal(0)
    deposit_use: Literal["refund", "offset"] = "refund"
    balloon_rate: Share = Decimal(0)
    purchase_option: Amount = Decimal(0)
    lender: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Financing:
        _exactly_one(self, ("share", "amount"))
        return self


class Funding(_Model):
    use: Annotated[list[Route], BeforeValidator(_listify)] | None = None  # default: every instrument given
    min_cash: Amount = Decimal(0)  # owners top up cash to at least this
    dscr_months: Months = 12  # the DSCR is tested on this many trailing months, as lenders usually do
    bank: Financing | None = None
    direct_lease: Financing | None = None
    sale_leaseback: Financing | None = None

    @property
    def instruments(self) -> tuple[str, ...]:
        """The instruments a run uses."""
        if self.use is None:
            return tuple(name for name in INSTRUMENTS if getattr(self, name) is not None)
        return tuple(name for name in INSTRUMENTS if name in self.use)


class Vat(_Model):
    output: Rate = Decimal("0.06")  # compute sold as an IT/cloud service (DOMAIN.md)
    equipment: Rate = Decimal("0.13")  # on servers bought (tangible movables)
    direct_lease: Rate | None = None  # default: the finance core's VAT table at the lease's start
    prices_include_vat: bool = True  # contract, market and equipment prices are quoted 含税


class Depreciation(_Model):
    method: Literal["straight_line", "declining_balance"] = "straight_line"
    months: Months
    salvage_rate: Share = Decimal(0)
    factor: Positive = Decimal(2)


class Accounting(_Model):
    depreciation: Depreciation
    income_tax_rate: Rate
    vat: Vat = Field(default_factory=Vat)


class Scenario(_Model):
    name: Text
    description: str = ""
    currency: Currency = "CNY"
    fx: dict[Currency, Positive] = Field(default_factory=dict)  # scenario currency per unit of each
    start: dt.date
    horizon_months: Horizon
    discount_rate: Rate  # annual, effective
    sites: list[Site] = Field(min_length=1)
    fleet: list[Purchase] = Field(min_length=1)
    contracts: list[Contract] = Field(default_factory=list)
    market: Market
    funding: Funding = Field(default_factory=Funding)
    accounting: Accounting
    risk: Risk = Field(default_factory=Risk)

    def with_route(self, route: str) -> Scenario:
        """The same business funded one way: ``own`` (equity alone) or one instrument."""
        if route not in ROUTES:
            raise ScenarioInvalid([f"route {route!r} is not known; use one of {', '.join(ROUTES)}"])
        if route != "own" and getattr(self.funding, route) is None:
            raise ScenarioInvalid([f"funding.{route}: is missing, so route {route} has no terms to use"])
        use: list[str] = [] if route == "own" else [route]
        return self.model_copy(update={"funding": self.funding.model_copy(update={"use": use})})

    def with_risk(self, **changes: object) -> Scenario:
        return self.model_copy(update={"risk": self.risk.model_copy(update=changes)})

    @property
    def end(self) -> date:
        return month_start(self.start, self.horizon_months)


def month_start(anchor: date, months: int) -> date:
    year, month = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    return date(year, month + 1, 1)


def month_index(anchor: date, when: date) -> int:
    """Months from ``anchor``'s month to ``when``'s month."""
    return (when.year - anchor.year) * 12 + when.month - anchor.month


# ------------------------------------------------------------------------------------------ messages

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field (check the spelling)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "date_type": "must be a date like 2025-03-01",
    "date_parsing": "must be a date like 2025-03-01",
    "date_from_datetime_parsing": "must be a date like 2025-03-01",
    "date_from_datetime_inexact": "must be a date like 2025-03-01, without a time",
    "model_type": "must be a mapping of fields",
    "model_attributes_type": "must be a mapping of fields",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "string_type": "must be text",
}


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "needs at least one entry"
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}, got {error.get('input')!r}"
    message = _MESSAGES.get(kind, error["msg"])
    return message[:1].lower() + message[1:]


def problems_of(exc: ValidationError) -> list[str]:
    seen: list[str] = []
    for error in exc.errors():
        # A failed Decimal field inside a union reports every branch; one line per path is enough.
        line = f"{_path(error['loc'])}: {_message(error)}"
        if line not in seen:
            seen.append(line)
    return seen


# ------------------------------------------------------------------------------------------- reading


class _Loader(yaml.SafeLoader):
    """Refuses duplicate keys: YAML keeps the last one silently, which hides a pasted-twice ``rate``."""


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_yaml(text: str, *, source: str | None = None) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioInvalid([f"{where}{exc.problem or exc}"], source=source) from None
    except yaml.YAMLError as exc:
        raise ScenarioInvalid([f"not valid YAML: {exc}"], source=source) from None


def parse_scenario(data: object, *, source: str | None = None, catalog: Any = None) -> Scenario:
    """A checked scenario from parsed YAML/JSON; raises :class:`ScenarioInvalid` listing every problem."""
    if not isinstance(data, Mapping):
        raise ScenarioInvalid(
            ["the document must be a mapping of sections (name, start, fleet, market, ...)"], source=source
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioInvalid(problems_of(exc), source=source) from None
    problems = check(scenario, catalog)
    if problems:
        raise ScenarioInvalid(problems, source=source)
    return scenario


def load_scenario(path: str | Path, *, catalog: Any = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"scenario file {path} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ScenarioInvalid([f"cannot be read ({type(exc).__name__})"], source=str(path)) from None
    return parse_scenario(parse_yaml(text, source=str(path)), source=str(path), catalog=catalog)


# ----------------------------------------------------------------------------------- semantic checks


def check(scenario: Scenario, catalog: Any = None) -> list[str]:
    """Every rule that spans fields or needs the catalog, as ``"path: problem"`` lines."""
    from computelease.catalog.core import (
        ConversionError,
        UnknownAccelerator,
        UnknownSku,
        convert,
        load_catalog,
    )

    catalog = catalog if catalog is not None else load_catalog()
    problems: list[str] = []
    add = problems.append
    start, end = scenario.start, scenario.end
    if start.day != 1:
        add(f"start: must be the first day of a month, e.g. {start.replace(day=1)}")

    def in_horizon(path: str, when: date) -> None:
        if when < start.replace(day=1) or when >= end:
            add(f"{path}: {when} is outside the horizon {start.replace(day=1)} to {end} (exclusive)")

    for code in scenario.fx:
        if code == scenario.currency:
            add(f"fx.{code}: is the scenario's own currency; leave it out")

    site_ids = [site.id for site in scenario.sites]
    for i, site_id in enumerate(site_ids):
        if site_ids.index(site_id) != i:
            add(f"sites[{i}].id: {site_id!r} is used twice")

    fleet_accelerators: dict[str, int] = {}
    first_purchase = min(p.date for p in scenario.fleet)
    for i, lot in enumerate(scenario.fleet):
        where = f"fleet[{i}]"
        if lot.site not in site_ids:
            add(f"{where}.site: {lot.site!r} is not a site; known: {', '.join(site_ids)}")
        in_horizon(f"{where}.date", lot.date)
        try:
            sku = catalog.sku(lot.sku)
        except UnknownSku as exc:
            add(f"{where}.sku: {exc.detail}")
            continue
        fleet_accelerators.setdefault(sku.accelerator_id, sku.gpus_per_node)
        if lot.kw_per_node is None and (sku.typical_kw is None or sku.typical_kw.value is None):
            add(f"{where}.kw_per_node: the catalog has no typical power for {sku.id}; give kw_per_node")
        currency = lot.currency or scenario.currency
        if currency != scenario.currency and currency not in scenario.fx:
            add(f"{where}.currency: no fx rate for {currency}; add fx.{currency}")
        if lot.unit_price is None and catalog_price(sku, scenario) is None:
            add(f"{where}.unit_price: the catalog has no usable price for {sku.id}; give unit_price")

    for i, contract in enumerate(scenario.contracts):
        where = f"contracts[{i}]"
        in_horizon(f"{where}.start", contract.start)
        try:
            catalog.accelerator(contract.accelerator)
        except UnknownAccelerator as exc:
            add(f"{where}.accelerator: {exc.detail}")
            continue
        if contract.accelerator not in fleet_accelerators:
            add(f"{where}.accelerator: the fleet holds no {contract.accelerator} servers to deliver it")
        tiers = contract.sla
        for j in range(1, len(tiers)):
            if not (tiers[j].below < tiers[j - 1].below and tiers[j].credit > tiers[j - 1].credit):
                add(
                    f"{where}.sla[{j}]: tiers go from the mildest to the worst: each 'below' lower and "
                    "each 'credit' higher than the one before"
                )
        cap = contract.capacity
        try:
            conversion = convert(
                contract.accelerator,
                pflops=cap.pflops,
                gpus=cap.gpus,
                nodes=cap.nodes,
                precision=cap.precision,
                sparse=cap.sparse,
                sku=cap.sku,
                catalog=catalog,
            )
        except (ConversionError, UnknownSku) as exc:
            add(f"{where}.capacity: {exc.detail}")
            continue
        if contract.price.per_server_month is not None and conversion.nodes is None:
            add(f"{where}.price.per_server_month: no server SKU is known for {contract.accelerator}")

    priced = set()
    for i, price in enumerate(scenario.market.prices):
        where = f"market.prices[{i}]"
        if price.accelerator in priced:
            add(f"{where}.accelerator: {price.accelerator} is priced twice")
        priced.add(price.accelerator)
        for j, launch in enumerate(price.launches):
            if launch.date < start:
                add(f"{where}.launches[{j}].date: {launch.date} is before the start {start}")
    if scenario.market.occupancy > 0:
        for accelerator in fleet_accelerators:
            if accelerator not in priced:
                add(
                    f"market.prices: no price for {accelerator}, which the fleet holds; "
                    "rent for uncontracted "
                    "capacity needs one (or set market.occupancy to 0)"
                )
    ages = [p.age_months for p in scenario.market.residual]
    if ages != sorted(set(ages)):
        add("market.residual: ages must rise from one point to the next")
    values = [p.value for p in scenario.market.residual]
    if any(b > a for a, b in pairwise(values)):
        add("market.residual: values must not rise with age")

    funding = scenario.funding
    for name in funding.use or ():
        if name != "own" and getattr(funding, name) is None:
            add(f"funding.use: {name} has no terms; add funding.{name}")
    if funding.use and "own" in funding.use and len(funding.use) > 1:
        add("funding.use: own means equity alone; do not combine it with instruments")
    shares = Decimal(0)
    for name in INSTRUMENTS:
        terms = getattr(funding, name)
        if terms is None:
            continue
        where = f"funding.{name}"
        if terms.share is not None and name in funding.instruments:
            shares += terms.share
        if terms.date is not None:
            in_horizon(f"{where}.date", terms.date)
        if terms.amount is not None:
            when = terms.date or first_purchase
            covered = [lot for lot in scenario.fleet if lot.date <= when]
            if not covered:
                add(f"{where}.date: no purchase on or before {when} to finance")
        problems += [f"{where}.{p}" for p in lease_term_problems(terms, name, start)]
    if shares > 1:
        add(f"funding: the shares of {', '.join(funding.instruments)} add up to {shares}, more than 1")
    return problems


_TERM_FIELDS = {"annual_rate": "rate", "principal": "amount", "balloon": "balloon_rate"}


def lease_term_problems(terms: Financing, kind: str, when: date) -> list[str]:
    """The finance core's verdict on these terms, with a placeholder principal (checked elsewhere)."""
    from computelease.finance import core

    try:
        lease_terms(terms, kind, Decimal(1_000_000), when)
    except core.FinanceTermError as exc:
        term = _TERM_FIELDS.get(exc.term, exc.term)
        detail = exc.detail.removeprefix(f"{exc.term}: ")
        return [f"{term}: {detail}"]
    return []


def lease_terms(terms: Financing, kind: str, principal: Decimal, when: date) -> Any:
    """The finance core's :class:`LeaseTerms` for one draw of an instrument."""
    from computelease.finance import core
    from computelease.money import to_fen

    principal = to_fen(principal)
    return core.LeaseTerms(
        principal=principal,
        annual_rate=terms.rate,
        months=terms.months,
        start=when,
        method=terms.method,
        timing=terms.timing,
        frequency=terms.frequency,
        grace_months=terms.grace_months,
        balloon=to_fen(principal * terms.balloon_rate),
        purchase_option=to_fen(terms.purchase_option),
        fee_rate=terms.fee_rate,
        deposit_rate=terms.deposit_rate,
        deposit_use=terms.deposit_use,
        kind="sale_leaseback" if kind == "sale_leaseback" else "direct",
    )


def catalog_price(sku: Any, scenario: Scenario) -> tuple[Decimal, Any] | None:
    """The catalog's reference price of ``sku`` in the scenario's currency (directly, else through fx)."""
    for price in sku.prices:
        if price.currency == scenario.currency:
            return price.amount, price
    for price in sku.prices:
        if price.currency in scenario.fx:
            return price.amount * scenario.fx[price.currency], price
    return None
