"""Runs INSIDE a vllm virtualenv (not collected by pytest): vLLM's own parser judges command lines.

Reads {"lines": [{"id": str, "argv": [str, ...]}]} on stdin, where argv is what follows
`vllm serve`; writes one JSON document: the installed release's table (scripts/vllm_table.py) and,
per line, whether `vllm serve ARGV` parses and validates, and the parsed values of the
destinations the operator owns. One process for all lines: importing vllm takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import vllm_table

DESTS = (
    "model_tag",
    "model",
    "served_model_name",
    "host",
    "port",
    "tensor_parallel_size",
    "quantization",
    "max_model_len",
    "gpu_memory_utilization",
    "max_num_seqs",
    "kv_cache_dtype",
    "enable_prefix_caching",
    "api_key",
    "load_format",
    "revision",
)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def judge(top: Any, serve: Any, argv: list[str]) -> dict[str, Any]:
    """Parse one command line; the owned values, or the parser's error."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = vllm_table.parse_serve(top, serve, argv)
    except SystemExit as exc:
        return {"ok": False, "error": err.getvalue().strip().splitlines()[-1:] or [f"exit {exc.code}"]}
    except Exception as exc:  # validation errors of the serve command
        return {"ok": False, "error": [f"{type(exc).__name__}: {exc}"]}
    return {"ok": True, "values": {d: _plain(getattr(args, d, None)) for d in DESTS}}


def main() -> int:
    """Judge every line on stdin."""
    request = json.load(sys.stdin)
    top, _, serve = vllm_table.serve_parser()
    results = [{"id": line["id"], **judge(top, serve, line["argv"])} for line in request["lines"]]
    json.dump({"table_text": vllm_table.render(vllm_table.table()), "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
