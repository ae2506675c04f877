"""Start the operator process: logging, kubeconfig, /metrics, and kopf with our handlers."""

from __future__ import annotations

import asyncio
import logging
import sys

import kopf
from prometheus_client import start_http_server

from modelfleet.settings import Settings


def run_operator(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    from modelfleet.kube import load_config
    from modelfleet.runtime import RUNTIME

    RUNTIME.configure(settings)  # before the handlers import: their timers read the intervals
    from modelfleet import handlers  # noqa: F401  (registers the kopf handlers)

    try:
        load_config()
    except Exception as exc:
        print(f"modelfleet run: no cluster to talk to ({exc}); set KUBECONFIG or run in a pod", file=sys.stderr)
        return 1
    from modelfleet.monitoring.fleet import register

    register(lambda: [view.llm for view in RUNTIME.registry.snapshot()])
    start_http_server(settings.metrics_port)
    namespaces = list(settings.namespaces)
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://0.0.0.0:{settings.health_port}/healthz",
        )
    )
    return 0
