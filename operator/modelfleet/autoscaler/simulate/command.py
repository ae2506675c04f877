"""``modelfleet autoscale simulate``: the argparse verb and its handler (exit 2 on bad input)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelfleet.api import KIND, LLMDeployment
from modelfleet.autoscaler.simulate.replica import (
    DEFAULT_ENGINE_START_SECONDS,
    DEFAULT_IMAGE_PULL_SECONDS,
    DEFAULT_LOAD_GBPS,
    ModelError,
    ReplicaModel,
)
from modelfleet.autoscaler.simulate.report import table, verdicts
from modelfleet.autoscaler.simulate.runs import CHOICES, compare_rows, parse_compare, stderr_progress
from modelfleet.autoscaler.simulate.trace import TraceError, read_trace

DESCRIPTION = """\
Replay a request trace through a simulated fleet of the LLMDeployment in FILE and print, per
autoscaler setting, TTFT percentiles and replica-hours: modelfleet's policy with the spec's
autoscaling settings, and (--compare) the Kubernetes HPA and KEDA on vLLM's queue metrics, each
swept over its threshold, a static fleet sized for the peak, and an oracle that knows every
arrival (the cost floor; every row's replica-hours are also given as a ratio to it).

Trace formats: CSV with the columns TIMESTAMP,ContextTokens,GeneratedTokens (as the Azure LLM
inference traces), or JSON Lines {"t": seconds, "prompt_tokens": N, "output_tokens": N}.
Each replica gets the KV cache and batch limit the planner computes for the spec's GPU, and
prefill/decode times from the GPU's datasheet with published vLLM efficiencies; see
docs/autoscaling.md for the model and its sources. Exit 2 on a bad trace line or a spec that
does not fit its GPUs."""


def add_simulate(verbs: Any) -> argparse.ArgumentParser:
    """Register the ``simulate`` verb."""
    p: argparse.ArgumentParser = verbs.add_parser(
        "simulate", help="replay a request trace through simulated replicas under several autoscalers",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-f", "--filename", required=True, metavar="FILE", help="YAML with an LLMDeployment")
    p.add_argument("--trace", required=True, metavar="FILE", help="request trace (.csv or .jsonl)")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="K",
                   help="replay K times faster (K times the load); default 1")
    p.add_argument("--compare", default="all", metavar="LIST",
                   help=f"autoscalers besides modelfleet, comma-separated from {','.join(CHOICES[1:])}; "
                        "'all' (default) or 'none'")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="simulations run in parallel (default 2)")
    p.add_argument("--image-pull-seconds", type=float, default=DEFAULT_IMAGE_PULL_SECONDS,
                   help=f"cold start: image pull (default {DEFAULT_IMAGE_PULL_SECONDS:g} s)")
    p.add_argument("--load-gbps", type=float, default=DEFAULT_LOAD_GBPS,
                   help=f"cold start: weight load bandwidth in GB/s (default {DEFAULT_LOAD_GBPS:g})")
    p.add_argument("--engine-start-seconds", type=float, default=DEFAULT_ENGINE_START_SECONDS,
                   help=f"cold start: engine start and warm-up (default {DEFAULT_ENGINE_START_SECONDS:g} s)")
    p.set_defaults(func=cmd_simulate)
    return p


class InputError(Exception):
    """Bad input for the simulator; the message is printed as is."""


def load_llm(path: str) -> LLMDeployment:
    """The first LLMDeployment in a YAML file (InputError naming the file and field)."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: {e}") from e
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            try:
                return LLMDeployment.model_validate(doc)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise InputError(f"{path}: invalid LLMDeployment: {where}: {first['msg']}") from e
    raise InputError(f"{path}: no LLMDeployment (kind: {KIND}) in the file")


def _positive(value: float, flag: str) -> None:
    if not value > 0:
        raise InputError(f"{flag} must be a positive number, got {value:g}")


def cmd_simulate(args: argparse.Namespace) -> int:
    """Handler of ``autoscale simulate``."""
    try:
        for value, flag in ((args.time_scale, "--time-scale"), (args.load_gbps, "--load-gbps")):
            _positive(value, flag)
        if args.image_pull_seconds < 0 or args.engine_start_seconds < 0:
            raise InputError("cold-start seconds must be >= 0")
        if args.jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {args.jobs}")
        try:
            compare = parse_compare(args.compare)
        except ValueError as e:
            raise InputError(f"--compare: {e}") from e
        llm = load_llm(args.filename)
        try:
            model = ReplicaModel.from_spec(llm.spec, image_pull_seconds=args.image_pull_seconds,
                                           load_gbps=args.load_gbps, engine_start_seconds=args.engine_start_seconds)
        except ModelError as e:
            raise InputError(f"{args.filename}: {e}") from e
        try:
            requests = read_trace(args.trace, args.time_scale)
        except TraceError as e:
            raise InputError(str(e)) from e
        too_big = next((r for r in requests if not model.admissible(r.prompt_tokens + r.output_tokens)), None)
        if too_big is not None:
            raise InputError(
                f"{args.trace}: a request at t={too_big.t:g} s has {too_big.prompt_tokens + too_big.output_tokens} "
                f"prompt + output tokens, more than maxModelLen ({model.max_model_len}) or one replica's whole "
                f"KV cache ({model.kv_tokens}); vLLM would reject it")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = compare_rows(requests, model, llm.spec.autoscaling, compare, workers=args.jobs,
                        progress=stderr_progress if len(requests) > 5000 else None)
    if args.output == "json":
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{len(requests)} requests over {requests[-1].t / 60:.1f} min; replica: KV {model.kv_tokens} tokens, "
          f"maxNumSeqs {model.max_num_seqs}, cold start {model.cold_start:.0f} s")
    print(table(rows))
    for v in verdicts(rows):
        print(v.text())
    return 0
