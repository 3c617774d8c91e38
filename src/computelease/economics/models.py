"""Stored scenarios and their runs.

A scenario is kept as the YAML text the analyst wrote (or the live database produced), so it can be
downloaded, edited and uploaded again; it is checked when stored and parsed again for every run. A run
keeps its parameters and the figures it produced (projection lines, funding routes, Monte Carlo
percentiles and histograms) as JSON: the inputs are the stored text, so a run can always be repeated.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from computelease.audit.models import Audited
from computelease.db import Base, Record


class ScenarioSource(StrEnum):
    upload = "upload"  # a file the analyst sent
    example = "example"  # one of the shipped examples
    live = "live"  # built from the live database


class RunStatus(StrEnum):
    done = "done"
    failed = "failed"  # the engine stopped on something unexpected; ``error`` says what


def _enum(cls: type[StrEnum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=20, validate_strings=True)


class StoredScenario(Record, Audited, Base):
    __tablename__ = "scenario"
    # The file itself can be large; the audit log keeps who stored it and its name.
    __audit_exclude__ = frozenset({"yaml"})

    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[ScenarioSource] = mapped_column(_enum(ScenarioSource, "scenario_source"))
    yaml: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))

    runs: Mapped[list[ScenarioRun]] = relationship(
        back_populates="scenario",
        order_by="ScenarioRun.id.desc()",
        lazy="raise_on_sql",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ScenarioRun(Record, Base):
    """One run of a stored scenario: derived figures, never edited, so not audited."""

    __tablename__ = "scenario_run"

    scenario_id: Mapped[int] = mapped_column(ForeignKey("scenario.id", ondelete="CASCADE"), index=True)
    paths: Mapped[int]
    seed: Mapped[int]
    routes: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "scenario_run_status"))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))

    scenario: Mapped[StoredScenario] = relationship(back_populates="runs")
