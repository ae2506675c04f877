"""Command line of e2e/cluster. Bad input: usage and exit 2. Build failure: the command and its tail."""

from __future__ import annotations

import argparse
import sys

from . import argocd, build, cluster, config, faults

DESCRIPTION = f"""\
A local Kubernetes {config.KUBERNETES_VERSION} control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler) with KWOK fake GPU nodes, run as local processes. Binaries are built once and cached in
{config.cache_root()}/ (MODELFLEET_CACHE); cluster state, kubeconfig and logs live in
{config.state_dir()}/ (MODELFLEET_CLUSTER_DIR)."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="e2e/cluster", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="verb", metavar="{up,down,status,env,build,stop,start,restart}")
    sub.required = True
    upp = sub.add_parser("up", help="build what is missing, start the cluster, print KUBECONFIG=<path> last")
    upp.add_argument("--nodes", type=_positive, default=config.DEFAULT_NODES,
                     help=f"fake GPU nodes (default {config.DEFAULT_NODES})")
    upp.add_argument("--gpus-per-node", type=_non_negative, default=config.DEFAULT_GPUS_PER_NODE,
                     help=f"{config.GPU_RESOURCE} per node (default {config.DEFAULT_GPUS_PER_NODE})")
    upp.add_argument("--with-prometheus", action="store_true",
                     help="also start Prometheus with file-based discovery of <state>/prometheus/targets/*.json")
    upp.add_argument("--with-argocd", action="store_true",
                     help="also run Argo CD (application controller, repo server, Redis) and a git server "
                          "(`status --json` gives git_url); builds Argo CD on first use")
    upp.add_argument("--with-keda", action="store_true",
                     help=f"also start KEDA {config.KEDA_VERSION} (operator + external-metrics API server) and wait "
                          "until its APIService is Available (added to a cluster that is already up)")
    upp.add_argument("--taint", action="store_true",
                     help="taint nodes kwok.x-k8s.io/node=fake:NoSchedule (pods then need the toleration)")
    sub.add_parser("down", help="stop every process it started and remove the state dir")
    st = sub.add_parser("status", help="what runs, on which ports, and where the logs are (exit 1 if not up)")
    st.add_argument("--json", action="store_true", help="print state.json (plus \"up\") as JSON")
    sub.add_parser("env", help="print KUBECONFIG=<path> if the cluster is up (exit 1 if not)")
    sub.add_parser("build", help="build and cache every binary (Kubernetes, etcd, kwok, helm, Argo CD, KEDA), "
                                 "install Prometheus and Redis")
    for verb, text in (
        ("stop", "stop one component on purpose (a fault for tests); `status` shows it stopped"),
        ("start", "start a stopped component again on the same port with the same data"),
        ("restart", "stop and start one component (same port, same data); the pid changes"),
    ):
        fp = sub.add_parser(verb, help=text, description=text)
        fp.add_argument("component", choices=faults.COMPONENTS, metavar="COMPONENT",
                        help=f"one of: {', '.join(faults.COMPONENTS)}")
        if verb != "start":
            fp.add_argument("--kill", action="store_true",
                            help="SIGKILL at once (a crash) instead of SIGTERM with a 3 s grace (a clean stop)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.verb == "up":
            return cluster.up(args.nodes, args.gpus_per_node, args.with_prometheus, taint=args.taint,
                              with_argocd=args.with_argocd, with_keda=args.with_keda)
        if args.verb == "down":
            return cluster.down()
        if args.verb == "status":
            return cluster.status(as_json=args.json)
        if args.verb == "env":
            return cluster.env()
        if args.verb in ("stop", "start", "restart"):
            return faults.run(args.verb, args.component, kill=getattr(args, "kill", False))
        if args.verb == "build":
            build.ensure_all(helm=True, prometheus=True, argocd=True, keda=True)
            for name in (*config.K8S_BINARIES, "kwok", "helm", "prometheus", *config.KEDA_BINARIES):
                print(f"{name:<24} {config.binary(name)}")
            print(f"{'argocd':<24} {argocd.binary()}\n{'redis-server':<24} {argocd.redis_binary()}")
            return 0
    except build.BuildError as e:
        print(f"[cluster] build failed: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `e2e/cluster status | head`
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"[cluster] {args.verb} failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[cluster] interrupted; run `e2e/cluster down` to clean up", file=sys.stderr)
        return 130
    return 2
