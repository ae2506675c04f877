"""`modelfleet status`: the fleet at a glance in a terminal, for people without Grafana."""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.parse
from typing import Any

EXIT_USAGE = 2

DESCRIPTION = """\
One line per LLMDeployment: ready/desired replicas and the autoscaling bounds, running requests,
waiting requests against the autoscaler's target (targetQueueDepth x ready replicas), KV-cache usage
of the fullest pod, time-to-first-token p95 over --window, and the autoscaler's last decision.

Replicas and decisions come from the cluster (the current kubeconfig). Live numbers come from
Prometheus (--prometheus URL: every column) or, without Prometheus, from the operator's own /metrics
(--operator-metrics URL: running and waiting as the autoscaler last saw them). Without either, the
live columns show "-".
"""


def _url(value: str) -> str:
    parsed = urllib.parse.urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL, e.g. http://prometheus:9090")
    return value


def add_parser(sub: Any) -> None:
    """Register `modelfleet status` on the top-level sub-command parser."""
    p = sub.add_parser("status", help="the fleet at a glance: replicas, queue, KV cache, TTFT, last decision",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--namespace", help="only this namespace (default: all namespaces)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prometheus", type=_url, metavar="URL", help="Prometheus base URL")
    src.add_argument("--operator-metrics", type=_url, metavar="URL",
                     help="the operator's /metrics URL, e.g. http://127.0.0.1:9090/metrics (kubectl port-forward)")
    p.add_argument("--window", default="5m", help="rate window for TTFT p95 (PromQL duration, default 5m)")
    p.add_argument("-o", "--output", choices=["table", "wide", "json"], default="table",
                   help="table (default), wide (adds the decision's reason) or json")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Read the cluster and the metrics, print the table; 1 when a source failed (what is known is printed)."""
    from modelfleet.monitoring import statusview

    if not _duration_ok(args.window):
        print(f"modelfleet status: --window {args.window!r} is not a PromQL duration such as 5m", file=sys.stderr)
        return EXIT_USAGE
    code = 0
    try:
        llms = _list_llms(args.namespace)
    except Exception as exc:
        print(f"modelfleet status: cannot list LLMDeployments: {exc}", file=sys.stderr)
        return 1
    live: dict[statusview.Key, statusview.Live] = {}
    try:
        live = _live(args)
    except Exception as exc:  # show the cluster's view anyway
        print(f"modelfleet status: no live numbers: {exc}", file=sys.stderr)
        code = 1
    table_rows = statusview.rows(llms, live, time.time())
    if args.output == "json":
        sys.stdout.write(statusview.as_json(table_rows))
    elif not table_rows:
        print(f"No LLMDeployments in {args.namespace or 'any namespace'}.", file=sys.stderr)
    else:
        sys.stdout.write(statusview.table(table_rows, wide=args.output == "wide"))
    return code


def _duration_ok(value: str) -> bool:
    return re.fullmatch(r"[0-9]+(ms|s|m|h|d)", value) is not None


def _list_llms(namespace: str | None) -> list[dict[str, Any]]:
    from modelfleet import api
    from modelfleet.kube import Kube, load_config

    load_config()
    return Kube().list_watched(api.KIND, namespace)


def _live(args: argparse.Namespace) -> dict[Any, Any]:
    from modelfleet.autoscaler import metrics
    from modelfleet.monitoring import statusview

    if args.prometheus:
        source = metrics.PrometheusSource(args.prometheus, timeout=args.timeout, retries=0)
        return statusview.parse_prometheus(source.run(statusview.prometheus_query(args.window)))
    if args.operator_metrics:
        return statusview.parse_operator_metrics(metrics.read_text(args.operator_metrics, args.timeout))
    return {}
