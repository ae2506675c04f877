"""`modelfleet plan`: the GPU fit report for LLMDeployment files or explicit flags.

    modelfleet plan -f FILE [-o table|json] [--explain]
    modelfleet plan (--model-config PATH | --model HF_ID) (--gpu-memory-gib G | --gpu PRODUCT)
                    [--gpus N] [--quantization Q] [--max-model-len L]
                    [--gpu-memory-utilization U] [--kv-cache-dtype D] [--max-num-seqs S]
                    [--vllm-version V] [-o table|json] [--explain]

--explain prints, per GPU, what vLLM's start-up profiling would log for the plan ("Model
loading took", "torch peak memory increase", "non-torch forward increase", "Available KV
cache memory", "GPU KV cache size"), to hold against a real log; JSON output always carries
it under "per_gpu". The vLLM version comes from spec.engine.image's tag (-f) or
--vllm-version (default: the release the operator renders).

FILE holds one or more YAML documents (`-` reads stdin); documents of other kinds are
skipped. JSON output is one object for one deployment (or for flags) and a list, in file
order, for several; each object has the keys weights_bytes, kv_cache_bytes_per_token,
kv_cache_tokens, max_concurrent_sequences, min_tensor_parallel_size, fits, reasons, then
extras (max_model_len, max_model_len_source, suggestion, ...; from -f also name, namespace).

Exit codes: 0 every deployment fits (or cannot be judged: fits null), 1 at least one does
not fit, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, NoReturn

from modelfleet.api import LLMDeployment
from modelfleet.loading import InputError, load_llm_deployments

from . import catalog
from .arch import ModelArch
from .errors import PlanInputError
from .fit import plan
from .gpus import GPUS, lookup_gpu
from .hfconfig import load_config
from .report import FitReport, format_explain, format_table
from .spec import plan_spec

PROG = "modelfleet plan"
CLI_SUGGESTIONS = ("fp8", "awq", "gguf-q4_k_m")


def _one_line_error(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register `plan` on an argparse subparsers object; the handler is `args.func`."""
    p = subparsers.add_parser(
        "plan",
        help="GPU fit report: weights, KV cache, tensor-parallel size",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.error = _one_line_error
    p.add_argument("-f", "--filename", metavar="FILE", help="LLMDeployment YAML (one or more documents; - for stdin)")
    p.add_argument("-o", "--output", default="table", metavar="FORMAT", help="table (default) or json")
    p.add_argument("--model-config", metavar="PATH", help="a Hugging Face config.json (or its directory)")
    p.add_argument("--model", metavar="HF_ID", help="a model from the built-in catalog, e.g. meta-llama/Llama-3.1-8B")
    p.add_argument("--gpu-memory-gib", metavar="G", help="memory of one GPU in GiB")
    p.add_argument("--gpu", metavar="PRODUCT", help="nvidia.com/gpu.product value, e.g. NVIDIA-H100-80GB-HBM3")
    p.add_argument("--gpus", default="1", metavar="N", help="GPUs per replica = tensor-parallel size (default 1)")
    p.add_argument(
        "--quantization", default="none", metavar="Q", help="none|bf16|fp16|fp8|int8|awq|gptq|bitsandbytes|gguf[-TYPE]"
    )
    p.add_argument("--max-model-len", metavar="L", help="context length; default: the largest that fits")
    p.add_argument("--gpu-memory-utilization", default="0.9", metavar="U", help="vLLM budget share, in (0, 1]")
    p.add_argument("--kv-cache-dtype", default="auto", metavar="D", help="auto|fp8|fp8_e4m3|fp8_e5m2")
    p.add_argument("--max-num-seqs", metavar="S", help="vLLM --max-num-seqs (default: vLLM's for the GPU)")
    p.add_argument("--max-num-batched-tokens", metavar="T", help="vLLM --max-num-batched-tokens (default: vLLM's)")
    p.add_argument("--vllm-version", metavar="V", help="vLLM release to model, e.g. 0.10.1 (default: the operator's)")
    p.add_argument(
        "--explain", action="store_true", help="per-GPU memory breakdown in the terms of vLLM's start-up log"
    )
    p.set_defaults(func=handle)


def _int_flag(flag: str, text: str | None, minimum: int = 1) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise PlanInputError(f"{flag} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise PlanInputError(f"{flag} must be >= {minimum}, got {value}")
    return value


def _float_flag(flag: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PlanInputError(f"{flag} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise PlanInputError(f"{flag} must be a finite number, got {text!r}")
    return value


def _arch_from_flags(args: argparse.Namespace) -> ModelArch:
    if bool(args.model_config) == bool(args.model):
        raise PlanInputError("give exactly one of --model-config PATH, --model HF_ID or -f FILE")
    if args.model_config:
        return load_config(args.model_config)
    arch = catalog.lookup(args.model)
    if arch is None:
        raise PlanInputError(f"model {args.model!r} is not in the built-in catalog; use --model-config PATH")
    return arch


def _memory_from_flags(args: argparse.Namespace) -> tuple[float, str | None]:
    if args.gpu_memory_gib is not None and args.gpu is not None:
        raise PlanInputError("give only one of --gpu-memory-gib and --gpu")
    if args.gpu_memory_gib is not None:
        memory = _float_flag("--gpu-memory-gib", args.gpu_memory_gib)
        if memory <= 0:
            raise PlanInputError(f"--gpu-memory-gib must be > 0, got {args.gpu_memory_gib}")
        return memory, None
    if args.gpu is None:
        raise PlanInputError("give --gpu-memory-gib G or --gpu PRODUCT")
    gpu = lookup_gpu(args.gpu)
    if gpu is None:
        raise PlanInputError(f"unknown GPU {args.gpu!r}; use --gpu-memory-gib, or one of: {', '.join(GPUS)}")
    return gpu.memory_gib, gpu.product


def _plan_flags(args: argparse.Namespace) -> FitReport:
    arch = _arch_from_flags(args)
    memory, product = _memory_from_flags(args)
    gpus = _int_flag("--gpus", args.gpus)
    utilization = _float_flag("--gpu-memory-utilization", args.gpu_memory_utilization)
    if not 0 < utilization <= 1:
        raise PlanInputError(f"--gpu-memory-utilization must be in (0, 1], got {args.gpu_memory_utilization}")
    max_num_seqs = _int_flag("--max-num-seqs", args.max_num_seqs)
    assert gpus is not None
    return plan(
        arch,
        quantization=args.quantization,
        gpu_memory_gib=memory,
        gpus=gpus,
        gpu_memory_utilization=utilization,
        max_model_len=_int_flag("--max-model-len", args.max_model_len),
        kv_cache_dtype=args.kv_cache_dtype,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=_int_flag("--max-num-batched-tokens", args.max_num_batched_tokens),
        quantization_candidates=CLI_SUGGESTIONS,
        vllm_version=args.vllm_version,
        gpu_product=product,
    )


def load_deployments(filename: str) -> list[LLMDeployment]:
    """Every LLMDeployment in a YAML file (`-` = stdin); PlanInputError on bad input."""
    try:
        return load_llm_deployments(filename)
    except InputError as exc:
        raise PlanInputError(str(exc)) from None


def _checked_cache(llm: LLMDeployment, report: FitReport) -> FitReport:
    """A model cache the spec cannot have (smaller than the checkpoint, a URI it cannot fetch) is bad input."""
    import os

    from modelfleet import cache
    from modelfleet.settings import SettingsError, cache_defaults

    try:
        planned = cache.plan(llm, report.weights_bytes, cache_defaults(dict(os.environ)))
    except SettingsError as exc:
        raise PlanInputError(str(exc)) from None
    if isinstance(planned, cache.CacheRefusal):
        raise PlanInputError(f"{llm.name}: {planned.message}")
    return report


def _run(args: argparse.Namespace) -> list[tuple[str, dict[str, str], FitReport]]:
    if args.output not in ("table", "json"):
        raise PlanInputError(f"-o must be table or json, got {args.output!r}")
    if args.filename:
        if args.model_config or args.model:
            raise PlanInputError("give either -f FILE or --model-config/--model, not both")
        if args.vllm_version:
            raise PlanInputError("--vllm-version applies to flags; with -f the version is spec.engine.image's tag")
        return [
            (d.name, {"name": d.name, "namespace": d.namespace}, _checked_cache(d, plan_spec(d.spec)))
            for d in load_deployments(args.filename)
        ]
    report = _plan_flags(args)
    return [(report.model or "model", {}, report)]


def handle(args: argparse.Namespace) -> int:
    """Run `plan` for parsed arguments; returns the exit code (0 fit, 1 does not fit, 2 bad input)."""
    try:
        results = _run(args)
    except PlanInputError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        objects = [{**report.to_json(), **meta} for _, meta, report in results]
        payload: Any = objects[0] if len(objects) == 1 else objects
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(format_table([(name, report) for name, _, report in results]))
        if args.explain:
            for name, _, report in results:
                sys.stdout.write("\n" + format_explain(name, report))
    return 1 if any(report.fits is False for _, _, report in results) else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m modelfleet.planner.cli plan ...` (the same as `modelfleet plan ...`)."""
    parser = argparse.ArgumentParser(prog="modelfleet")
    parser.error = _one_line_error  # type: ignore[method-assign]
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
