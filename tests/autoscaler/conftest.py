"""Fixtures for the autoscaler tests: a real Prometheus (Debian's /usr/bin/prometheus) scraping
vllmsim processes through file-based discovery, as the e2e harness does."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from e2e.vllmsim.harness import PROMETHEUS, Prom, prometheus_server  # noqa: E402


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    """A real Prometheus scraping every 1 s whatever its file-sd targets file lists."""
    if not Path(PROMETHEUS).exists():
        # Never a silent skip: `make tools` (e2e/cluster build) installs it, and CI runs that first.
        pytest.fail(f"{PROMETHEUS} is missing: run `make tools` (or apt-get install -y prometheus)", pytrace=False)
    with prometheus_server(tmp_path_factory.mktemp("prom")) as prom:
        yield prom
