"""Prometheus (Debian's /usr/bin/prometheus) with file-based service discovery for the tests.

Tests add scrape targets by writing JSON files into <state>/prometheus/targets/, e.g.
  [{"targets": ["127.0.0.1:8000"], "labels": {"namespace": "t-1", "pod": "sim-0"}}]
Prometheus re-reads the directory every second and scrapes every 2 s (job "modelfleet").
"""

from __future__ import annotations

from pathlib import Path

from . import config
from .components import Component, Layout


def write_config(lay: Layout) -> Path:
    lay.targets_dir.mkdir(parents=True, exist_ok=True)
    cfg = lay.prometheus_dir / "prometheus.yml"
    cfg.write_text(
        "global:\n"
        f"  scrape_interval: {config.PROMETHEUS_SCRAPE_INTERVAL}\n"
        f"  scrape_timeout: {config.PROMETHEUS_SCRAPE_INTERVAL}\n"
        f"  evaluation_interval: {config.PROMETHEUS_SCRAPE_INTERVAL}\n"
        "scrape_configs:\n"
        f"  - job_name: {config.PROMETHEUS_JOB}\n"
        "    file_sd_configs:\n"
        f"      - files: ['{lay.targets_dir}/*.json']\n"
        f"        refresh_interval: {config.PROMETHEUS_SD_REFRESH}\n"
    )
    return cfg


def component(lay: Layout, port: int) -> Component:
    cfg = write_config(lay)
    return Component(
        "prometheus", str(config.binary("prometheus")),
        [
            f"--config.file={cfg}",
            f"--storage.tsdb.path={lay.prometheus_dir / 'data'}",
            "--storage.tsdb.retention.time=6h",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--log.level=warn",
        ],
        health_url=f"http://127.0.0.1:{port}/-/ready",
    )
