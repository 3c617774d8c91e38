"""Acceptance probe (验收): what a GPU node really delivers, judged against the catalog (issue 8)."""
