"""Fixtures for the install tests."""

from __future__ import annotations

import pytest
from installkit import HELM, generate


@pytest.fixture(scope="session")
def helm_binary() -> str:
    """The pinned, cached helm; fails (never skips) when it has not been built."""
    if HELM is None:
        pytest.fail(f"helm not built: run `make tools` (e2e/cluster build) for {generate.PINNED_HELM}", pytrace=False)
    return str(HELM)
