"""`modelfleet run|render|plan|crd|autoscale|status`: the operator and its offline tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from modelfleet import __version__
from modelfleet.loading import InputError, load_llm_deployments

EXIT_USAGE = 2


def _cmd_crd(args: argparse.Namespace) -> int:
    from modelfleet.crd import crd_yaml

    sys.stdout.write(crd_yaml())
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    import os

    from modelfleet import cache, render
    from modelfleet.fitcheck import check_fit
    from modelfleet.reconcile import desired_replicas
    from modelfleet.settings import SettingsError, cache_defaults

    try:
        llms = load_llm_deployments(args.file)
        defaults = cache_defaults(dict(os.environ))
    except (InputError, SettingsError) as exc:
        print(f"modelfleet render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    objects: list[dict[str, Any]] = []
    caches: dict[tuple[str, str], list[dict[str, Any]]] = {}  # one PVC + Job per cache, however many users
    refused = 0
    for llm in llms:
        fit = check_fit(llm)
        if fit.verdict.fits is False:
            refused += 1
            print(
                f"modelfleet render: {llm.namespace}/{llm.name} would not be rolled out: {fit.verdict.message}",
                file=sys.stderr,
            )
            continue
        weights = fit.report.weights_bytes if fit.report else None
        planned = cache.plan(llm, weights, defaults, llms)
        if isinstance(planned, cache.CacheRefusal):
            print(f"modelfleet render: {args.file}: {llm.name}: {planned.message}", file=sys.stderr)
            return EXIT_USAGE
        if planned is not None:
            caches[(planned.namespace, planned.name)] = [cache.pvc(planned), cache.job(planned)]
        choices = render.RenderChoices(
            replicas=desired_replicas(llm, None),
            max_model_len=fit.max_model_len,
            weights_bytes=weights,
            cache_claim=planned.name if planned is not None else None,
        )
        objects += render.render(llm, choices)
    shared = [obj for pair in caches.values() for obj in pair]
    sys.stdout.write(yaml.safe_dump_all(shared + objects, sort_keys=False))
    return 1 if refused else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from modelfleet.process import run_operator
    from modelfleet.settings import Settings, SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"modelfleet run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    overrides = {
        "namespaces": tuple(args.namespace) if args.namespace else None,
        "prometheus_url": args.prometheus_url,
        "metrics_mode": args.metrics_mode,
        "log_level": args.log_level,
        "health_port": args.health_port,
        "metrics_port": args.metrics_port,
        "autoscale_interval_seconds": args.autoscale_interval,
        "lease_name": args.lease_name,
        "lease_namespace": args.lease_namespace,
        "identity": args.identity,
        "leader_election": False if args.no_leader_election else None,
    }
    settings = Settings(**{**settings.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    return run_operator(settings)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="modelfleet",
        description="Run fleets of self-hosted vLLM servers on Kubernetes.",
        epilog="Docs: README.md. Every command takes --help.",
    )
    parser.add_argument("--version", action="version", version=f"modelfleet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the operator against the current kubeconfig (or in-cluster config)",
        description="Run the operator. Settings come from MODELFLEET_* variables; flags win.",
    )
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable); default: all namespaces (MODELFLEET_NAMESPACES)",
    )
    run.add_argument("--prometheus-url", help="Prometheus base URL for autoscaling (MODELFLEET_PROMETHEUS_URL)")
    run.add_argument(
        "--metrics-mode",
        choices=["prometheus", "scrape", "off"],
        help="where the autoscaler reads vLLM metrics (MODELFLEET_METRICS_MODE)",
    )
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="(MODELFLEET_LOG_LEVEL)")
    run.add_argument("--health-port", type=int, help="liveness endpoint port, /healthz (MODELFLEET_HEALTH_PORT)")
    run.add_argument("--metrics-port", type=int, help="operator /metrics port (MODELFLEET_METRICS_PORT)")
    run.add_argument("--autoscale-interval", type=int, help="seconds between autoscaler cycles")
    election = run.add_argument_group(
        "leader election",
        "Operators sharing a Lease elect one leader; only it reconciles and autoscales, the others wait.",
    )
    election.add_argument("--lease-name", help="Lease to elect on (MODELFLEET_LEASE_NAME; default modelfleet)")
    election.add_argument(
        "--lease-namespace",
        help="namespace of the Lease (MODELFLEET_LEASE_NAMESPACE; default: the pod's namespace, else default)",
    )
    election.add_argument(
        "--identity", help="this process in the Lease (MODELFLEET_IDENTITY; default: POD_NAME, else host-pid)"
    )
    election.add_argument(
        "--no-leader-election",
        action="store_true",
        help="act at once without a Lease (MODELFLEET_LEADER_ELECTION=false); only when no other operator runs",
    )
    run.set_defaults(func=_cmd_run)

    render = sub.add_parser(
        "render",
        help="print every object the operator would create, as YAML (no cluster)",
        description="Render the children of the LLMDeployment(s) in FILE as a YAML stream.",
    )
    render.add_argument("-f", "--file", required=True, help="YAML file with one or more LLMDeployments ('-': stdin)")
    render.set_defaults(func=_cmd_render)

    crd = sub.add_parser("crd", help="print the LLMDeployment CustomResourceDefinition")
    crd.set_defaults(func=_cmd_crd)

    _add_optional(sub, "modelfleet.planner.cli")
    _add_optional(sub, "modelfleet.autoscaler.cli")
    _add_optional(sub, "modelfleet.monitoring.cli")
    return parser


def _add_optional(sub: Any, module: str) -> None:
    """Register a sub-command that lives with the code it fronts."""
    import importlib

    importlib.import_module(module).add_parser(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `modelfleet` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
