"""Which ``tf`` invocations take the fast path for ``tf run``; everything else goes to the full CLI."""

from __future__ import annotations

import pytest

from trustfence.agent.entry import plain_run


@pytest.mark.parametrize(("argv", "plan"), [
    (["run", "--name", "Bot", "--", "./agent", "-x"], ("Bot", None, False, ["./agent", "-x"])),
    (["run", "--name=Bot", "--user", "ci", "--nftables-only", "--", "true"], ("Bot", "ci", True, ["true"])),
    (["run", "--user=ci", "--name", "Bot", "--", "sh", "--", "x"], ("Bot", "ci", False, ["sh", "--", "x"])),
])
def test_plain_forms_take_the_fast_path(argv: list[str], plan: tuple[object, ...]) -> None:
    assert plain_run(argv) == plan


@pytest.mark.parametrize("argv", [
    [], ["status"], ["run", "--help"], ["run", "--name", "Bot"], ["run", "--name", "Bot", "--"],
    ["run", "--", "true"], ["run", "--name", "--", "true"], ["run", "--name", "Bot", "--verbose", "--", "true"],
    ["run", "--name=", "--", "true"], ["run", "--name", "Bot", "--user=", "--", "true"],
    ["logs", "--name", "Bot", "--", "true"],
])
def test_anything_else_goes_to_the_cli(argv: list[str]) -> None:
    assert plain_run(argv) is None
