"""Nodes as CSV: parsing with every bad row reported, all-or-nothing import, and the round trip."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select

from computelease.audit.models import AuditEntry
from computelease.auth.core import SYSTEM
from computelease.fleet import csvio, service
from computelease.fleet.core import NodeState
from computelease.fleet.models import Gpu, Node, NodeEvent, Rack

HEADER = ",".join(
    [
        "serial",
        "sku",
        "site",
        "rack",
        "fabric",
        "state",
        "state_since",
        "purchase_cost",
        "currency",
        "purchase_date",
        "supplier",
        "gpu_uuids",
        "note",
    ]
)


def csv_text(*rows: str) -> str:
    return "\r\n".join((HEADER, *rows)) + "\r\n"


GOOD = (
    'X1,nvidia-hgx-h100-8gpu,qy-1,B07,ib-a,in_service,2025-03-01 09:30,"2,300,000.00",CNY,2025/2/1,'
    "浪潮,GPU-a;;GPU-c,"
)


class TestParse:
    def test_a_good_row(self) -> None:
        rows, errors = csvio.parse_nodes(csv_text(GOOD).encode("utf-8-sig"))
        assert errors == []
        (row,) = rows
        assert row.line == 2 and row.serial == "X1" and row.rack == "B07"
        assert row.purchase_cost == Decimal("2300000.00") and row.purchase_date == date(2025, 2, 1)
        assert row.state is NodeState.in_service
        assert row.state_since == datetime(2025, 3, 1, 9, 30)  # naive: the site's local time
        assert row.gpu_uuids == ("GPU-a", None, "GPU-c")

    def test_every_bad_row_is_reported_with_the_line_a_spreadsheet_shows(self) -> None:
        text = csv_text(
            GOOD,
            "X2,nvidia-hgx-h100-8gpu,qy-1,,,running,,12.345,CNY,2025-13-01,,,",  # line 3: three problems
            "",  # blank rows are skipped, but still counted
            'X3,nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,CNY,2025-01-01,,,"two-line',
            'note"',
            ",nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,XYZ,2025-01-01,,,",  # line 7
        )
        rows, errors = csvio.parse_nodes(text)
        assert [r.serial for r in rows] == ["X1", "X3"]
        assert [(e.line, e.message.split(" ")[0]) for e in errors] == [
            (3, "state"),
            (3, "purchase_cost"),
            (3, "purchase_date"),
            (7, "serial"),
            (7, "currency"),
        ]
        assert "running" in errors[0].message and "in_service" in errors[0].message
        assert str(errors[3]) == "line 7: serial is empty"

    def test_header_problems_stop_at_line_one(self) -> None:
        _, errors = csvio.parse_nodes("serial,sku,sight,state\r\nX,y,z,ordered\r\n")
        assert len(errors) == 1 and errors[0].line == 1
        assert "missing columns: site, purchase_cost, purchase_date" in errors[0].message
        assert "unknown columns: sight" in errors[0].message
        assert csvio.parse_nodes(b"")[1][0].message.startswith("the file is empty")

    def test_too_many_cells(self) -> None:
        _, errors = csvio.parse_nodes(csv_text(GOOD + ",extra,cells"))
        assert errors[0].line == 2 and "15 cells" in errors[0].message

    def test_excel_on_chinese_windows_saves_gb18030(self) -> None:
        rows, errors = csvio.parse_nodes(csv_text(GOOD).encode("gb18030"))
        assert errors == [] and rows[0].supplier == "浪潮"

    def test_formula_cells_are_escaped_and_come_back(self) -> None:
        row = csvio.NodeRow(
            line=0,
            serial="-X9",
            sku="s",
            site="qy-1",
            state=NodeState.ordered,
            purchase_cost=Decimal("1.00"),
            purchase_date=date(2025, 1, 1),
            note='=HYPERLINK("http://evil")',
            state_since=datetime(2025, 1, 1, tzinfo=UTC),
        )
        data = csvio.write_nodes([row])
        assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8 only with it
        assert b"'=HYPERLINK" in data and b"\r\n'-X9," in data
        (back,), errors = csvio.parse_nodes(data)
        assert errors == [] and back.note == row.note and back.serial == "-X9"
        assert back.state_since == row.state_since


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


class TestImport:
    def test_a_file_with_bad_rows_writes_nothing_and_names_every_one(self, db, fleet) -> None:
        text = csv_text(
            GOOD,  # fine on its own
            "X2,no-such-sku,qy-1,,,ordered,,100,CNY,2025-01-01,,,",
            "X3,nvidia-hgx-h100-8gpu,nowhere,,,ordered,,100,CNY,2025-01-01,,,",
            "N1,nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,CNY,2025-01-01,,,",  # serial already in the fleet
            "X1,nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,CNY,2025-01-01,,,",  # repeats line 2
            "X6,nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,CNY,2025-01-01,,GPU-n1-0,",  # GPU of N1
            "X7,nvidia-hgx-h100-8gpu,qy-1,,,ordered,2999-01-01T00:00+08:00,100,CNY,2025-01-01,,,",
            "X8,nvidia-hgx-h100-8gpu,qy-1,,,ordered,,100,CNY,2025-01-01,,a;b;c;d;e;f;g;h;i,",
        )
        with db.transaction("test") as s:
            before = (count(s, Node), count(s, Gpu), count(s, Rack), count(s, AuditEntry))
        with pytest.raises(service.CsvInvalid) as info, db.transaction("test") as s:
            service.import_nodes(s, text)
        errors = {(e.line, e.message) for e in info.value.errors}
        lines = sorted({line for line, _ in errors})
        assert lines == [3, 4, 5, 6, 7, 8, 9]
        messages = " | ".join(m for _, m in sorted(errors))
        for expected in (
            "sku 'no-such-sku' is not in the catalog",
            "site 'nowhere' does not exist (sites: qy-1, sh-1)",
            "serial 'N1' is already in the fleet",
            "serial 'X1' is also on line 2",
            "GPU uuid 'GPU-n1-0' is already in the fleet",
            "is in the future",
            "gpu_uuids lists 9 GPUs but sku nvidia-hgx-h100-8gpu holds 8",
        ):
            assert expected in messages
        problem = info.value.problem()
        assert problem["status"] == 422 and len(problem["errors"]) == len(errors)
        assert info.value.detail.startswith("7 bad row(s), nothing was imported: line 3:")
        with db.transaction("test") as s:
            assert (count(s, Node), count(s, Gpu), count(s, Rack), count(s, AuditEntry)) == before

    def test_dry_run_checks_and_writes_nothing(self, db, fleet) -> None:
        with db.transaction("test") as s:
            result = service.import_nodes(s, csv_text(GOOD), dry_run=True)
            assert result.rows == 1 and result.nodes == []
        with db.transaction("test") as s:
            assert s.scalar(select(Node).where(Node.serial == "X1")) is None

    def test_import_creates_nodes_gpus_history_and_missing_racks(self, db, fleet) -> None:
        with db.transaction("test") as s:
            result = service.import_nodes(s, csv_text(GOOD))
            assert result.racks_created == ["qy-1/B07"]
        with db.transaction("test") as s:
            node = service.get_node_by_serial(s, SYSTEM, "X1")
            assert node.rack_name == "B07" and node.state is NodeState.in_service
            # The site's zone reads the naive time: 09:30 in Asia/Shanghai is 01:30 UTC.
            assert node.state_since == datetime(2025, 3, 1, 1, 30, tzinfo=UTC)
            assert [g.uuid for g in node.gpus][:3] == ["GPU-a", None, "GPU-c"] and len(node.gpus) == 8
            (event,) = service.events(s, SYSTEM, node.id)
            assert event.from_state is None and event.reason == "imported from CSV (line 2)"


def test_round_trip_export_import_into_an_empty_fleet(db, fleet) -> None:
    with db.transaction("test") as s:
        first = service.export_nodes(s, SYSTEM)
    assert first.count(b"\r\n") == 5  # header and four nodes
    with db.engine.begin() as conn:
        for table in (NodeEvent, Gpu, Node, Rack):
            conn.execute(delete(table))
    with db.transaction("test") as s:
        assert len(service.import_nodes(s, first).nodes) == 4
    with db.transaction("test") as s:
        assert service.export_nodes(s, SYSTEM) == first
        n2 = service.get_node_by_serial(s, SYSTEM, "N2")
        assert n2.state is NodeState.faulty and n2.rack_name == "A01" and n2.fabric == "ib-b"
        n3 = service.get_node_by_serial(s, SYSTEM, "N3")
        assert n3.purchase_cost == Decimal("1300000.50") and n3.note == "=cmd|' /C calc'!A0"
