"""The agent's errors: each says what to do, and the CLI prints it as one line."""

from __future__ import annotations

from computelease.errors import AppError


class AgentError(AppError):
    status = 400


class BackendUnavailable(AgentError):
    """The telemetry source cannot start (no nvidia-ml-py, no driver, no GPU)."""


class SpoolError(AgentError):
    """The spool file cannot be used (another agent holds it, it belongs to another node, it is corrupt)."""
