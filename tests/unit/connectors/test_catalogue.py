"""The published catalogue matches what the connectors emit, and docs/connectors.md is not stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustfence.connectors import Connector, build_connector
from trustfence.connectors.catalogue import catalogue, render_markdown
from trustfence.connectors.registry import KNOWN_TYPES

DOC = Path(__file__).resolve().parents[3] / "docs" / "connectors.md"
EXTRA: dict[str, dict[str, object]] = {
    "mcp": {"urls": ["https://mcp.example/mcp"]},
    "webhook": {"urls": ["https://hooks.example/in/abc"]},
    "generic": {"hosts": ("api.example",)},
}


def connector(type_name: str) -> Connector:
    return build_connector(type_name, type_name, **EXTRA.get(type_name, {}))  # type: ignore[arg-type]


@pytest.mark.parametrize("type_name", sorted(KNOWN_TYPES))
def test_catalogue_lists_every_action_the_connector_can_emit(type_name: str) -> None:
    c = connector(type_name)
    listed = {e.action for e in catalogue(type_name)}
    assert c.all_actions <= listed
    for name in listed:  # and nothing it cannot: placeholders stand for an open prefix
        head = name.split("<", 1)[0]
        assert c.accepts_action(name) if "<" not in name else c.accepts_prefix(head), name


@pytest.mark.parametrize(("type_name", "minimum"), [("github", 60), ("openai", 30), ("stripe", 50), ("slack", 40),
                                                     ("anthropic", 12)])
def test_catalogue_sizes(type_name: str, minimum: int) -> None:
    routes = {e.action for e in catalogue(type_name) if ".unknown." not in e.action and "<" not in e.action}
    assert len(routes) >= minimum


def test_unknown_type_is_named() -> None:
    with pytest.raises(ValueError, match="known: anthropic, crates, generic, github"):
        catalogue("gitlab")


def test_docs_are_generated_from_the_tables() -> None:
    assert DOC.read_text() == render_markdown(), (
        "docs/connectors.md is stale: .venv/bin/python -m trustfence.connectors.catalogue > docs/connectors.md")
