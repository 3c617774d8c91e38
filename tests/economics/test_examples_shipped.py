"""The examples offered on the scenario page ship inside the package: the same files as examples/."""

from __future__ import annotations

from pathlib import Path

from computelease.economics import runs

ROOT = Path(__file__).resolve().parents[2]


def test_package_copies_match_the_repository_examples() -> None:
    shipped = {e.key: e.text for e in runs.examples()}
    repo = {p.stem: p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.yaml"))}
    assert shipped == repo, "copy examples/*.yaml to src/computelease/economics/data/"


def test_every_shipped_example_parses_and_names_itself() -> None:
    for example in runs.examples():
        assert example.name and example.description
        assert runs.parse_text(example.text).name == example.name
