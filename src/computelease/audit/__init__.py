"""Audit log: who changed which business record, when, from what to what."""
