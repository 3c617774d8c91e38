"""The command line on a throwaway SQLite file, migrated once per session and copied per test."""

from __future__ import annotations
