from __future__ import annotations

import pytest

from trustfence.proxy.dns import exfiltration_signal


@pytest.mark.parametrize("name", ["api.github.com", "uploads.github.com", "a.b.c.example.org"])
def test_ordinary_names_are_not_flagged(name: str) -> None:
    assert exfiltration_signal(name) == ""


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a" * 50 + ".evil.example", "label of 50"),
        ("x9fQ2kLm0pZr7TbV.evil.example", "high-entropy"),
        (".".join(["abcdefghij"] * 11) + ".example", "name of"),
    ],
)
def test_covert_looking_names_are_flagged(name: str, why: str) -> None:
    assert why in exfiltration_signal(name)
