"""`modelfleet autoscale …` sub-commands. The main CLI calls :func:`add_parser`; every handler
is stored as ``func`` in the parsed namespace and returns the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from modelfleet.autoscaler.replay import ReplayError, load_deployment, parse_observations, replay
from modelfleet.autoscaler.simulate.command import add_simulate


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``autoscale`` (verbs ``replay`` and ``simulate``) on an argparse sub-parsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "autoscale", help="autoscaler tools", description="Autoscaler tools.")
    verbs = p.add_subparsers(dest="autoscale_verb", required=True, metavar="VERB")
    r = verbs.add_parser(
        "replay", help="replay recorded observations through the autoscaling policy",
        description="Print what the policy of the LLMDeployment in FILE would have decided for each "
                    "line of the observations file (JSON Lines: t, waiting, running, ready_replicas, "
                    "replicas). Exit 2 on bad input.")
    r.add_argument("-f", "--filename", required=True, metavar="FILE", help="YAML with an LLMDeployment")
    r.add_argument("--observations", required=True, metavar="FILE.jsonl", help="recorded observations")
    r.add_argument("-o", "--output", choices=("json", "table"), default="json")
    r.set_defaults(func=cmd_replay)
    add_simulate(verbs)
    return p


def cmd_replay(args: argparse.Namespace) -> int:
    """Handler of ``autoscale replay``."""
    try:
        spec, seqs = load_deployment(args.filename)
        try:
            with open(args.observations, encoding="utf-8") as f:
                samples = parse_observations(f, args.observations)
        except OSError as e:
            raise ReplayError(f"{args.observations}: {e.strerror or e}") from e
    except ReplayError as e:
        print(e, file=sys.stderr)
        return 2
    rows = replay(spec, seqs, samples)
    if args.output == "json":
        json.dump(rows, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(f"{'T':>10}  {'DESIRED':>7}  REASON")
        for row in rows:
            print(f"{row['t']:>10g}  {row['desired_replicas']:>7}  {row['reason']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry for tests: ``main(["autoscale", "replay" | "simulate", ...])``."""
    parser = argparse.ArgumentParser(prog="modelfleet")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
