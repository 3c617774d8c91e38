"""Fleet use cases. Every read starts from :func:`readable_nodes` or :func:`readable_sites`.

Scope, today: staff see the whole fleet; customer and lessor callers see none of it. Later a
customer will see the nodes allocated to its contracts and a lessor the nodes its leases finance:
that is a change to :func:`_visible_nodes` alone, and sites follow (a site is visible when one of
its visible nodes stands there).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import ColumnElement, Select, false, func, select, true
from sqlalchemy.orm import Session, lazyload

from computelease import metrics
from computelease.auth.core import Principal, Role
from computelease.catalog import service as catalog_service
from computelease.catalog.core import Catalog, ServerSku, UnknownSku
from computelease.errors import Conflict, NotFound, Unprocessable
from computelease.fleet import core, csvio
from computelease.fleet.core import Event, NodeState, StateInterval
from computelease.fleet.models import Gpu, Node, NodeEvent, Rack, Site
from computelease.fleet.schemas import GpuIn, NodeIn, NodePatch, RackIn, SiteIn, SitePatch
from computelease.kit import events as domain_events
from computelease.kit.time import as_utc, utcnow

# ---------------------------------------------------------------------------------------- scope


def _visible_nodes(principal: Principal) -> ColumnElement[bool]:
    """The one place that says which nodes a caller may see (widened by the allocation and lease
    issues: customer → nodes allocated to its contracts, lessor → nodes its leases finance)."""
    if principal.is_staff:
        return true()
    if principal.role == Role.customer:
        # Imported here: allocation builds on fleet, so fleet cannot import it at module level.
        from computelease.allocation.models import Allocation
        from computelease.contracts.models import Contract

        own = select(Contract.id).where(Contract.customer_id == principal.customer_id)
        return Node.id.in_(select(Allocation.node_id).where(Allocation.contract_id.in_(own)))
    if principal.role == Role.lessor:
        # Imported here for the same reason: finance builds on fleet.
        from computelease.finance.service import lessor_node_ids

        return Node.id.in_(lessor_node_ids(principal))
    return false()


def readable_nodes(principal: Principal) -> Select[tuple[Node]]:
    return select(Node).where(_visible_nodes(principal))


def readable_sites(principal: Principal) -> Select[tuple[Site]]:
    if principal.is_staff:
        return select(Site)
    return select(Site).where(Site.id.in_(select(Node.site_id).where(_visible_nodes(principal))))


def _actor(session: Session) -> str:
    return str(session.info.get("actor", "system"))


# ---------------------------------------------------------------------------------------- sites


def get_site(session: Session, principal: Principal, site_id: int) -> Site:
    site = session.scalar(readable_sites(principal).where(Site.id == site_id))
    if site is None:
        raise NotFound(f"site {site_id} does not exist or is not visible to you")
    return site


def _site_unique(
    session: Session, *, code: str | None, name: str | None, other_than: int | None = None
) -> None:
    for column, value in ((Site.code, code), (Site.name, name)):
        if value is None:
            continue
        stmt = select(Site.id).where(column == value)
        if other_than is not None:
            stmt = stmt.where(Site.id != other_than)
        if session.scalar(stmt) is not None:
            raise Conflict(f"a site with {column.key} {value!r} already exists; pick another {column.key}")


def create_site(session: Session, data: SiteIn) -> Site:
    _site_unique(session, code=data.code, name=data.name)
    names = [r.name for r in data.racks]
    if len(set(names)) != len(names):
        raise Unprocessable(
            f"rack names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}"
        )
    site = Site(**data.model_dump(exclude={"racks"}))
    site.racks = [Rack(name=r.name, power_kw=r.power_kw) for r in data.racks]
    session.add(site)
    session.flush()
    return site


def update_site(session: Session, principal: Principal, site_id: int, patch: SitePatch) -> Site:
    site = get_site(session, principal, site_id)
    changes = patch.model_dump(exclude_unset=True)
    for key, value in changes.items():
        if value is None:
            raise Unprocessable(f"{key} cannot be cleared; send a value")
    _site_unique(session, code=changes.get("code"), name=changes.get("name"), other_than=site.id)
    for key, value in changes.items():
        setattr(site, key, value)
    session.flush()
    return site


def delete_site(session: Session, principal: Principal, site_id: int) -> None:
    site = get_site(session, principal, site_id)
    if session.scalar(select(Node.id).where(Node.site_id == site.id).limit(1)) is not None:
        raise Conflict(f"site {site.code} still holds nodes; move or remove them first")
    session.delete(site)
    session.flush()


def add_rack(session: Session, principal: Principal, site_id: int, data: RackIn) -> Rack:
    site = get_site(session, principal, site_id)
    if any(r.name == data.name for r in site.racks):
        raise Conflict(f"site {site.code} already has a rack {data.name!r}")
    rack = Rack(site=site, name=data.name, power_kw=data.power_kw)
    session.add(rack)
    session.flush()
    return rack


@dataclass(frozen=True, slots=True)
class RackLoad:
    rack: Rack
    nodes: int
    typical_kw: Decimal | None  # None when a node's SKU has no typical power figure
    over_budget: bool


def rack_loads(
    session: Session, principal: Principal, site: Site, catalog: Catalog | None = None
) -> list[RackLoad]:
    """Per rack: its active nodes and their typical IT load against the rack's power budget."""
    catalog = catalog or catalog_service.catalog(session)
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    stmt = (
        select(Node.rack_id, Node.sku_id, func.count())
        .where(_visible_nodes(principal), Node.site_id == site.id, Node.state.in_(core.ACTIVE_STATES))
        .group_by(Node.rack_id, Node.sku_id)
    )
    for rack_id, sku_id, n in session.execute(stmt):
        if rack_id is not None:
            counts[rack_id][sku_id] += n
    out = []
    for rack in sorted(site.racks, key=natural_key):
        load: Decimal | None = Decimal(0)
        for sku_id, n in counts[rack.id].items():
            figure = sku_or_none(catalog, sku_id)
            kw = figure.typical_kw.value if figure and figure.typical_kw else None
            load = None if load is None or kw is None else load + kw * n
        over = load is not None and rack.power_kw is not None and load > rack.power_kw
        out.append(RackLoad(rack, sum(counts[rack.id].values()), load, over))
    return out


def natural_key(rack: Rack) -> tuple[object, ...]:
    """A02 before A10 before A100: rack names number their rows."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", rack.name))


def sku_or_none(catalog: Catalog, sku_id: str) -> ServerSku | None:
    try:
        return catalog.sku(sku_id)
    except UnknownSku:
        return None


# ---------------------------------------------------------------------------------------- nodes


def get_node(session: Session, principal: Principal, node_id: int, *, lock: bool = False) -> Node:
    stmt = readable_nodes(principal).where(Node.id == node_id)
    if lock:
        # Two transitions of one node at once would both pass the check against the same state.
        # A state change needs none of the related rows; loading them on every change is most of its cost.
        stmt = stmt.with_for_update().options(lazyload(Node.site), lazyload(Node.rack), lazyload(Node.gpus))
    node = session.scalar(stmt)
    if node is None:
        raise NotFound(f"node {node_id} does not exist or is not visible to you")
    return node


def filter_nodes(
    stmt: Select[tuple[Node]],
    *,
    site_id: int | None = None,
    model: str | None = None,
    fabric: str | None = None,
    states: Sequence[NodeState] | None = None,
    sku_id: str | None = None,
    serial: str | None = None,
    customer_id: int | None = None,
) -> Select[tuple[Node]]:
    """The fleet list's filters, shared by the API, the pages and the CSV export. ``customer_id``: the
    nodes serving one of that customer's contracts now."""
    if site_id is not None:
        stmt = stmt.where(Node.site_id == site_id)
    if model:
        stmt = stmt.where(Node.model == model)
    if fabric:
        stmt = stmt.where(Node.fabric == fabric)
    if states:
        stmt = stmt.where(Node.state.in_(list(states)))
    if sku_id:
        stmt = stmt.where(Node.sku_id == sku_id)
    if serial:
        stmt = stmt.where(Node.serial.contains(serial, autoescape=True))
    if customer_id is not None:
        # Imported here: allocation builds on fleet, so fleet cannot import it at module level.
        from computelease.allocation.models import Allocation
        from computelease.contracts.models import Contract

        now = utcnow()
        serving = (
            select(Allocation.node_id)
            .join(Contract, Contract.id == Allocation.contract_id)
            .where(Contract.customer_id == customer_id, Allocation.start_at <= now, Allocation.end_at > now)
        )
        stmt = stmt.where(Node.id.in_(serving))
    return stmt


def _sku(catalog: Catalog, sku_id: str) -> ServerSku:
    try:
        return catalog.sku(sku_id)
    except UnknownSku as exc:
        # A bad reference in the body is the caller's input to fix, not a missing resource.
        raise Unprocessable(exc.detail) from None


def _site_rack(session: Session, site_id: int, rack_id: int | None) -> tuple[Site, Rack | None]:
    site = session.get(Site, site_id)
    if site is None:
        raise Unprocessable(f"site {site_id} does not exist; create it first or pick another site_id")
    if rack_id is None:
        return site, None
    rack = session.get(Rack, rack_id)
    if rack is None or rack.site_id != site.id:
        names = ", ".join(f"{r.id} ({r.name})" for r in site.racks) or "none yet"
        raise Unprocessable(f"rack {rack_id} is not in site {site.code}; its racks: {names}")
    return site, rack


def _serial_free(session: Session, serial: str, *, other_than: int | None = None) -> None:
    stmt = select(Node.id).where(Node.serial == serial)
    if other_than is not None:
        stmt = stmt.where(Node.id != other_than)
    if (found := session.scalar(stmt)) is not None:
        raise Conflict(f"node {found} already has the serial {serial!r}; serials are unique")


def _gpu_identities(
    session: Session, gpus: Sequence[GpuIn], gpus_per_node: int, *, node_id: int | None = None
) -> dict[int, GpuIn]:
    by_index: dict[int, GpuIn] = {}
    for gpu in gpus:
        if gpu.index >= gpus_per_node:
            raise Unprocessable(
                f"GPU index {gpu.index} is out of range: the node holds GPUs 0–{gpus_per_node - 1}"
            )
        if gpu.index in by_index:
            raise Unprocessable(f"GPU index {gpu.index} is given twice")
        by_index[gpu.index] = gpu
    for attr in ("uuid", "serial"):
        values = [getattr(g, attr) for g in gpus if getattr(g, attr)]
        if len(set(values)) != len(values):
            raise Unprocessable(f"GPU {attr}s repeat within the node: {', '.join(sorted(values))}")
        if not values:
            continue
        column = getattr(Gpu, attr)
        stmt = select(column, Gpu.node_id).where(column.in_(values))
        if node_id is not None:
            stmt = stmt.where(Gpu.node_id != node_id)
        taken = session.execute(stmt).first()
        if taken is not None:
            raise Conflict(f"GPU {attr} {taken[0]!r} already belongs to node {taken[1]}")
    return by_index


def _add_node(
    session: Session,
    *,
    serial: str,
    sku: ServerSku,
    site: Site,
    rack: Rack | None,
    fabric: str | None,
    purchase_cost: Decimal,
    currency: str,
    purchase_date: date,
    supplier: str,
    note: str,
    state: NodeState,
    since: datetime,
    gpus: dict[int, tuple[str | None, str | None]],
    reason: str,
) -> Node:
    node = Node(
        serial=serial,
        sku_id=sku.id,
        model=sku.accelerator_id,
        site=site,
        rack=rack,
        fabric=fabric or None,
        purchase_cost=purchase_cost,
        currency=currency,
        purchase_date=purchase_date,
        supplier=supplier,
        note=note,
        state=state,
        state_since=as_utc(since),
    )
    node.gpus = [
        Gpu(index=i, uuid=gpus.get(i, (None, None))[0], serial=gpus.get(i, (None, None))[1])
        for i in range(sku.gpus_per_node)
    ]
    session.add(node)
    session.add(
        NodeEvent(
            node=node, from_state=None, to_state=state, at=as_utc(since), reason=reason, actor=_actor(session)
        )
    )
    return node


def create_node(
    session: Session, data: NodeIn, *, catalog: Catalog | None = None, now: datetime | None = None
) -> Node:
    """A node enters the fleet in ``data.state`` (``ordered`` by default) with its GPUs from the SKU."""
    catalog = catalog or catalog_service.catalog(session)
    now = now or utcnow()
    sku = _sku(catalog, data.sku_id)
    site, rack = _site_rack(session, data.site_id, data.rack_id)
    _serial_free(session, data.serial)
    gpus = _gpu_identities(session, data.gpus, sku.gpus_per_node)
    since = data.state_since or now
    if since > now:
        raise Unprocessable(
            f"state_since {since.isoformat()} is in the future; a state is a fact, not a plan"
        )
    node = _add_node(
        session,
        serial=data.serial,
        sku=sku,
        site=site,
        rack=rack,
        fabric=data.fabric,
        purchase_cost=data.purchase_cost,
        currency=data.currency,
        purchase_date=data.purchase_date,
        supplier=data.supplier,
        note=data.note,
        state=data.state,
        since=since,
        gpus={i: (g.uuid, g.serial) for i, g in gpus.items()},
        reason="entered the fleet",
    )
    session.flush()
    return node


def update_node(session: Session, principal: Principal, node_id: int, patch: NodePatch) -> Node:
    node = get_node(session, principal, node_id)
    changes = patch.model_dump(exclude_unset=True, exclude={"gpus"})
    for key in ("serial", "site_id", "purchase_cost", "currency", "purchase_date", "supplier", "note"):
        if key in changes and changes[key] is None:
            raise Unprocessable(f"{key} cannot be cleared; send a value")
    if "serial" in changes:
        _serial_free(session, changes["serial"], other_than=node.id)
    if "site_id" in changes or "rack_id" in changes:
        site_id = changes.pop("site_id", node.site_id)
        # Moving to another site leaves the old rack behind unless a new one is named.
        default_rack = node.rack_id if site_id == node.site_id else None
        site, rack = _site_rack(session, site_id, changes.pop("rack_id", default_rack))
        node.site, node.rack = site, rack
    for key, value in changes.items():
        setattr(node, key, (value or None) if key == "fabric" else value)
    if patch.gpus is not None:
        by_index = _gpu_identities(session, patch.gpus, len(node.gpus), node_id=node.id)
        # Clear first, then set: swapping two UUIDs between slots must not trip the unique index.
        touched = [g for g in node.gpus if g.index in by_index]
        for gpu in touched:
            for attr in ("uuid", "serial"):
                if attr in by_index[gpu.index].model_fields_set:
                    setattr(gpu, attr, None)
        session.flush()
        for gpu in touched:
            given = by_index[gpu.index]
            for attr in ("uuid", "serial"):
                if attr in given.model_fields_set:
                    setattr(gpu, attr, getattr(given, attr))
    session.flush()
    return node


def delete_node(session: Session, principal: Principal, node_id: int) -> None:
    node = get_node(session, principal, node_id)
    if node.state is not NodeState.ordered:
        raise Conflict(
            f"node {node.serial} is {node.state.value}; only an ordered node (entered by mistake) can be "
            "removed. A node with a history stays: retire or sell it"
        )
    session.delete(node)
    session.flush()


def transition(
    session: Session,
    principal: Principal,
    node_id: int,
    to: NodeState | str,
    *,
    at: datetime | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> NodeEvent:
    """Moves the node to ``to`` at ``at`` (now when ``None``) and records the event.

    Raises :class:`core.IllegalTransition` (409) for a move the lifecycle forbids and
    :class:`core.HistoryInvalid` (422) for a time before the node's latest change or in the future.
    """
    node = get_node(session, principal, node_id, lock=True)
    to = NodeState(to)
    now = now or utcnow()
    at = at or now
    label = f"node {node.serial}"
    core.check_transition(node.state, to, node=label)
    core.check_event_time(at, last=node.state_since, now=now, node=label)
    event = NodeEvent(
        node_id=node.id,
        from_state=node.state,
        to_state=to,
        at=as_utc(at),
        reason=reason,
        actor=_actor(session),
    )
    node.state, node.state_since = to, as_utc(at)
    session.add(event)
    session.flush()
    domain_events.publish(
        session, "node.state_changed", node_id=node.id, from_=event.from_state, to=to, at=event.at
    )
    return event


def events(session: Session, principal: Principal, node_id: int) -> list[NodeEvent]:
    node = get_node(session, principal, node_id)
    stmt = select(NodeEvent).where(NodeEvent.node_id == node.id).order_by(NodeEvent.at, NodeEvent.id)
    return list(session.scalars(stmt))


# ------------------------------------------------------------------------------- state intervals


def state_intervals(
    session: Session,
    principal: Principal,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    node_ids: Iterable[int] | None = None,
) -> list[StateInterval]:
    """Every visible node's states over ``[start, end)``, sorted by node then time.

    This is the record occupancy, SLA and the lessor's view sum over. With ``end`` given every
    interval is closed at or before it; without, each node's current state is open (``end=None``).
    Time before a node's first event belongs to no interval.
    """
    stmt = (
        select(NodeEvent.node_id, NodeEvent.at, NodeEvent.to_state, NodeEvent.from_state)
        .where(NodeEvent.node_id.in_(select(Node.id).where(_visible_nodes(principal))))
        .order_by(NodeEvent.node_id, NodeEvent.at, NodeEvent.id)
    )
    if node_ids is not None:
        stmt = stmt.where(NodeEvent.node_id.in_(list(node_ids)))
    if end is not None:
        stmt = stmt.where(NodeEvent.at < end)
    out: list[StateInterval] = []
    for node_id, rows in itertools.groupby(session.execute(stmt), key=lambda r: r.node_id):
        history = [Event(at=r.at, to_state=r.to_state, from_state=r.from_state) for r in rows]
        out += core.intervals(node_id, history, start, end)
    return out


def node_intervals(
    session: Session,
    principal: Principal,
    node_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[StateInterval]:
    node = get_node(session, principal, node_id)
    return state_intervals(session, principal, start, end, node_ids=[node.id])


@dataclass(frozen=True, slots=True)
class StateCount:
    state: NodeState
    nodes: int
    gpus: int


def state_counts(
    session: Session, principal: Principal, stmt: Select[tuple[Node]] | None = None
) -> list[StateCount]:
    """Nodes and GPUs per state (every state listed, zeros included), over ``stmt`` (a filtered
    :func:`readable_nodes`) or the caller's whole visible fleet."""
    nodes = (stmt if stmt is not None else readable_nodes(principal)).subquery()
    gpus = select(Gpu.node_id, func.count().label("n")).group_by(Gpu.node_id).subquery()
    query = (
        select(nodes.c.state, func.count(), func.coalesce(func.sum(gpus.c.n), 0))
        .select_from(nodes)
        .join(gpus, gpus.c.node_id == nodes.c.id, isouter=True)
        .group_by(nodes.c.state)
    )
    found = {NodeState(state): (n, int(g)) for state, n, g in session.execute(query)}
    return [StateCount(s, *found.get(s, (0, 0))) for s in NodeState]


def distinct_values(session: Session, principal: Principal) -> dict[str, list]:
    """What the fleet filters offer: the visible sites, models and fabrics, and (staff) the customers
    that hold an allocation."""
    from computelease.allocation.models import Allocation
    from computelease.contracts.models import Contract, Customer

    visible = _visible_nodes(principal)
    customers = []
    if principal.is_staff:
        holders = select(Contract.customer_id).join(Allocation, Allocation.contract_id == Contract.id)
        customers = list(
            session.execute(
                select(Customer.id, Customer.name).where(Customer.id.in_(holders)).order_by(Customer.name)
            )
        )
    return {
        "customers": customers,
        "sites": list(session.scalars(readable_sites(principal).order_by(Site.code))),
        "models": list(session.scalars(select(Node.model).where(visible).distinct().order_by(Node.model))),
        "fabrics": list(
            session.scalars(
                select(Node.fabric).where(visible, Node.fabric.is_not(None)).distinct().order_by(Node.fabric)
            )
        ),
    }


# ------------------------------------------------------------------------------------ CSV in/out


class CsvInvalid(Unprocessable):
    """Bad rows; ``errors`` lists each with its line. Nothing of the file was written."""

    SHOWN = 20

    def __init__(self, errors: Sequence[csvio.RowError]) -> None:
        self.errors = list(errors)
        lines = {e.line for e in errors}
        shown = "; ".join(str(e) for e in errors[: self.SHOWN])
        more = f"; …and {len(errors) - self.SHOWN} more" if len(errors) > self.SHOWN else ""
        super().__init__(
            f"{len(lines)} bad row(s), nothing was imported: {shown}{more}",
            errors=[{"line": e.line, "message": e.message} for e in errors],
        )


@dataclass
class ImportResult:
    dry_run: bool
    nodes: list[Node] = field(default_factory=list)
    rows: int = 0
    racks_created: list[str] = field(default_factory=list)


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _taken(session: Session, column: object, values: Iterable[str]) -> set[str]:
    wanted = sorted({v for v in values if v})
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(session.scalars(select(column).where(column.in_(chunk))))  # type: ignore[attr-defined]
    return found


def import_nodes(
    session: Session, data: bytes | str, *, dry_run: bool = False, now: datetime | None = None
) -> ImportResult:
    """Adds the nodes of a CSV file, all or none: every bad row is reported with its line and reason,
    and a file with any bad row writes nothing. Racks the file names are created when missing."""
    now = now or utcnow()
    rows, errors = csvio.parse_nodes(data)
    catalog = catalog_service.catalog(session)
    sites = {s.code: s for s in session.scalars(select(Site))}
    serials_taken = _taken(session, Node.serial, (r.serial for r in rows))
    uuids_taken = _taken(session, Gpu.uuid, (u for r in rows for u in r.gpu_uuids if u))
    gpu_serials_taken = _taken(session, Gpu.serial, (s for r in rows for s in r.gpu_serials if s))
    first_line: dict[tuple[str, str], int] = {}
    plan: list[tuple[csvio.NodeRow, ServerSku, Site, datetime]] = []

    for row in rows:
        problems: list[str] = []
        sku = sku_or_none(catalog, row.sku)
        if sku is None:
            problems.append(f"sku {row.sku!r} is not in the catalog (see `computelease catalog list`)")
        elif row.model and row.model != sku.accelerator_id:
            problems.append(
                f"model {row.model!r} does not match sku {sku.id}, which holds {sku.accelerator_id}"
            )
        site = sites.get(row.site)
        if site is None:
            known = ", ".join(sorted(sites)) or "none yet"
            problems.append(f"site {row.site!r} does not exist (sites: {known}); create it first")
        claims = [("serial", row.serial, serials_taken)]
        claims += [("GPU uuid", u, uuids_taken) for u in row.gpu_uuids if u]
        claims += [("GPU serial", g, gpu_serials_taken) for g in row.gpu_serials if g]
        for kind, value, taken in claims:
            if value in taken:
                problems.append(f"{kind} {value!r} is already in the fleet; the import only adds new nodes")
            elif (kind, value) in first_line:
                where = first_line[(kind, value)]
                problems.append(
                    f"{kind} {value!r} is also on line {where}"
                    if where != row.line
                    else f"{kind} {value!r} repeats within the row"
                )
            else:
                first_line[(kind, value)] = row.line
        if sku is not None:
            for name, values in (("gpu_uuids", row.gpu_uuids), ("gpu_serials", row.gpu_serials)):
                if len(values) > sku.gpus_per_node:
                    problems.append(
                        f"{name} lists {len(values)} GPUs but sku {sku.id} holds {sku.gpus_per_node}"
                    )
        since = now
        if row.state_since is not None and site is not None:
            since = row.state_since
            if since.tzinfo is None:
                since = since.replace(tzinfo=ZoneInfo(site.time_zone))
            if since > now:
                problems.append(f"state_since {row.state_since.isoformat()} is in the future")
        errors += [csvio.RowError(row.line, p) for p in problems]
        if not problems:
            assert sku is not None and site is not None
            plan.append((row, sku, site, since))

    if errors:
        raise CsvInvalid(sorted(errors, key=lambda e: e.line))
    result = ImportResult(dry_run=dry_run, rows=len(plan))
    if dry_run:
        return result
    racks = {(r.site_id, r.name): r for s in sites.values() for r in s.racks}
    for row, sku, site, since in plan:
        rack = None
        if row.rack:
            rack = racks.get((site.id, row.rack))
            if rack is None:
                rack = racks[(site.id, row.rack)] = Rack(site=site, name=row.rack)
                session.add(rack)
                result.racks_created.append(f"{site.code}/{row.rack}")
        gpus = {
            i: (
                row.gpu_uuids[i] if i < len(row.gpu_uuids) else None,
                row.gpu_serials[i] if i < len(row.gpu_serials) else None,
            )
            for i in range(sku.gpus_per_node)
        }
        result.nodes.append(
            _add_node(
                session,
                serial=row.serial,
                sku=sku,
                site=site,
                rack=rack,
                fabric=row.fabric,
                purchase_cost=row.purchase_cost,
                currency=row.currency,
                purchase_date=row.purchase_date,
                supplier=row.supplier,
                note=row.note,
                state=row.state,
                since=since,
                gpus=gpus,
                reason=f"imported from CSV (line {row.line})",
            )
        )
    session.flush()
    return result


def export_rows(session: Session, stmt: Select[tuple[Node]]) -> list[csvio.NodeRow]:
    """``stmt`` is a (filtered) :func:`readable_nodes`; rows in serial order so exports compare."""
    out = []
    for node in session.scalars(stmt.order_by(None).order_by(Node.serial)):
        zone = ZoneInfo(node.site.time_zone)
        out.append(
            csvio.NodeRow(
                line=0,
                serial=node.serial,
                sku=node.sku_id,
                model=node.model,
                site=node.site.code,
                rack=node.rack_name,
                fabric=node.fabric,
                state=node.state,
                # Local time with its offset: what the operator reads, still one exact instant.
                state_since=node.state_since.astimezone(zone),
                purchase_cost=node.purchase_cost,
                currency=node.currency,
                purchase_date=node.purchase_date,
                supplier=node.supplier,
                gpu_uuids=tuple(g.uuid for g in node.gpus),
                gpu_serials=tuple(g.serial for g in node.gpus),
                note=node.note,
            )
        )
    return out


def export_nodes(session: Session, principal: Principal, stmt: Select[tuple[Node]] | None = None) -> bytes:
    return csvio.write_nodes(export_rows(session, stmt if stmt is not None else readable_nodes(principal)))


# ------------------------------------------------------------------------------------- metrics


@metrics.register
def _fleet_gauges(session: Session) -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "computelease_fleet_nodes",
        "Nodes by site, accelerator model and state",
        labels=["site", "model", "state"],
    )
    gpus = GaugeMetricFamily(
        "computelease_fleet_gpus",
        "GPUs by site, accelerator model and state",
        labels=["site", "model", "state"],
    )
    per_node = select(Gpu.node_id, func.count().label("n")).group_by(Gpu.node_id).subquery()
    stmt = (
        select(
            Site.code, Node.model, Node.state, func.count(Node.id), func.coalesce(func.sum(per_node.c.n), 0)
        )
        .join(Site, Site.id == Node.site_id)
        .join(per_node, per_node.c.node_id == Node.id, isouter=True)
        .group_by(Site.code, Node.model, Node.state)
    )
    for code, model, state, n, g in session.execute(stmt):
        labels = [code, model, NodeState(state).value]
        family.add_metric(labels, float(n))
        gpus.add_metric(labels, float(g))
    yield family
    yield gpus


def get_node_by_serial(session: Session, principal: Principal, serial: str) -> Node:
    node = session.scalar(readable_nodes(principal).where(Node.serial == serial))
    if node is None:
        raise NotFound(f"no node with serial {serial!r} is visible to you")
    return node


def get_site_by_code(session: Session, principal: Principal, code: str) -> Site:
    site = session.scalar(readable_sites(principal).where(Site.code == code))
    if site is None:
        raise NotFound(f"no site with code {code!r}")
    return site
