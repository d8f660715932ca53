from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="system tests need root (sudo make test)")
    for item in items:
        if "system" in item.keywords:
            item.add_marker(skip)
