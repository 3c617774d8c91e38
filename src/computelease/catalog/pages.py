"""The catalog page: accelerators and server SKUs with their figures' confidence, and a CSV export."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from computelease.auth.deps import Session
from computelease.catalog import service
from computelease.catalog.core import PRECISIONS, Figure
from computelease.web.labels import N_, labeller
from computelease.web.pages import Viewer, render

router = APIRouter(include_in_schema=False)

SHOWN_PRECISIONS = ("bf16", "fp16", "fp8")
LABELS = {
    "imported": N_("Imported"),
    "domestic": N_("Domestic"),
    "datasheet": N_("Datasheet"),
    "third-party": N_("Third-party"),
    "weak": N_("Weak"),
}


label = labeller(LABELS, "The translated name of a catalog code or any other code.")


def _shown(figure: Figure | None) -> str:
    return "" if figure is None else figure.display()


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request, session: Session, viewer: Viewer) -> HTMLResponse:
    catalog = service.catalog_for(session, viewer)
    return render(
        request,
        "catalog/catalog.html",
        label=label,
        shown=_shown,
        precisions=SHOWN_PRECISIONS,
        accelerators=catalog.accelerators,
        skus=catalog.skus,
    )


@router.get("/catalog/accelerators.csv")
def accelerators_csv(session: Session, viewer: Viewer) -> Response:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    figures = ("memory_gb", "memory_bandwidth_gbs", "scale_up_gbs", "tdp_w")
    dense = [f"dense_{p}" for p in PRECISIONS]
    writer.writerow(("id", "vendor", "name", "origin", *figures, *dense, "confidence", "source", "custom"))
    for a in service.catalog_for(session, viewer).accelerators:
        writer.writerow(
            (
                a.id,
                a.vendor,
                a.name,
                a.origin,
                *(_shown(getattr(a, f)) for f in figures),
                *(_shown(a.tflops(p)) for p in PRECISIONS),
                a.confidence,
                a.source,
                "yes" if a.custom else "",
            )
        )
    return Response(
        buf.getvalue().encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="accelerators.csv"'},
    )
