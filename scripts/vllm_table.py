#!/usr/bin/env python3
"""Generate one vLLM release's flag-and-metric table from the installed `vllm` package itself.

Runs INSIDE a virtualenv that has `vllm==VERSION` installed (`make vllm-venv VERSION=x.y.z`
builds one under ~/.cache/modelfleet/vllm/VERSION/); `make vllm-table VERSION=x.y.z` runs it
and writes operator/modelfleet/engines/vllm/data/vllm-VERSION.json.

    python scripts/vllm_table.py                 # print the JSON table of the installed vllm
    python scripts/vllm_table.py --write DIR     # write DIR/vllm-<version>.json
    python scripts/vllm_table.py --check FILE    # exit 1 and show the difference when FILE is stale

What it reads, all from vLLM's own code (never typed by hand):
- options: the `vllm serve` sub-parser exactly as the `vllm` CLI builds it (FlexibleArgumentParser
  + the serve sub-command's `subparser_init`): every option string, its destination, whether it
  takes a value, booleans and their `--no-` forms, choices, nargs and the type callable's name;
- metrics: every `name="vllm:..."` passed to a Prometheus metric class in the V1 engine's source
  (the only engine of the supported releases), marked hidden when it is created only under
  `show_hidden_metrics` (deprecated names that need --show-hidden-metrics-for-version);
- features: what the parser accepts for a few values the operator may render (e.g.
  `--max-model-len auto`), found by parsing them.
It imports vllm with VLLM_TARGET_DEVICE=cpu, so no GPU is needed.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")

SCHEMA = 1
METRIC_NAME = re.compile(r"vllm:[a-z][a-z0-9_]*")
# Values whose acceptance differs between releases; each is parsed as `serve MODEL FLAG VALUE`.
FEATURE_PROBES: dict[str, list[str]] = {
    "max_model_len_auto": ["--max-model-len", "auto"],
}


def _cpu_platform() -> None:
    """Give vLLM its own CPU platform when it detects none.

    From 0.12 on VLLM_TARGET_DEVICE=cpu selects it; 0.11 only does so for CPU builds, so its CUDA
    wheel on a machine without a GPU finds no platform and refuses to build the parser (whose
    defaults ask for a device type). Must run before the entrypoints are imported.
    """
    import vllm.platforms as platforms

    if not platforms.current_platform.device_type:
        from vllm.platforms.cpu import CpuPlatform

        platforms._current_platform = CpuPlatform()  # type: ignore[attr-defined]


def serve_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, Any]:
    """(top-level parser, `serve` sub-parser, the serve command object) as `vllm` builds them."""
    _cpu_platform()
    import vllm.entrypoints.cli.serve as serve_module

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # 0.11 keeps it in vllm.utils
        from vllm.utils import FlexibleArgumentParser  # type: ignore[attr-defined,no-redef]

    top = FlexibleArgumentParser(description="vLLM CLI")
    sub = top.add_subparsers(required=False, dest="subparser")
    commands = {cmd.name: cmd for cmd in serve_module.cmd_init()}
    serve = commands["serve"]
    serve_sub = serve.subparser_init(sub)
    serve_sub.set_defaults(dispatch_function=serve.cmd)
    return top, serve_sub, serve


def parse_serve(top: argparse.ArgumentParser, serve: Any, argv: list[str]) -> argparse.Namespace:
    """Parse `vllm serve ARGV` and run the serve command's own validation, as `vllm` does."""
    args = top.parse_args(["serve", *argv])
    serve.validate(args)
    return args


def _type_name(action: argparse.Action) -> str | None:
    kind = action.type
    if kind is None:
        return None
    func = getattr(kind, "func", kind)  # functools.partial
    name = getattr(func, "__name__", None) or type(func).__name__
    return str(name)


def _choices(action: argparse.Action) -> list[str] | None:
    if action.choices is None:
        return None
    return sorted({str(c) for c in action.choices})


def options(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Every optional argument of a parser, in the parser's order."""
    found = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        boolean = isinstance(
            action, argparse.BooleanOptionalAction | argparse._StoreTrueAction | argparse._StoreFalseAction
        )
        found.append(
            {
                "option_strings": list(action.option_strings),
                "dest": action.dest,
                "takes_value": action.nargs != 0,
                "boolean": boolean,
                "negative": [s for s in action.option_strings if s.startswith("--no-")],
                "choices": _choices(action),
                "nargs": None if action.nargs is None else str(action.nargs),
                "type": _type_name(action),
            }
        )
    return found


def _metric_kind(call: ast.Call) -> str:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    for kind in ("histogram", "counter", "gauge", "info"):
        if kind in name.lower():
            return kind
    return "unknown"


def _hidden_guard(node: ast.AST) -> bool:
    return "show_hidden_metrics" in ast.unparse(node)


def _metric_name(call: ast.Call, constants: dict[str, str]) -> str | None:
    """The `vllm:` name a call passes (name= keyword or first argument, literal or module constant)."""
    candidates = [kw.value for kw in call.keywords if kw.arg == "name"] + call.args[:1]
    for node in candidates:
        value = constants.get(node.id) if isinstance(node, ast.Name) else getattr(node, "value", None)
        if isinstance(value, str) and value.startswith("vllm:") and "::" not in value:
            return value
    return None


def metrics_in(source: str) -> list[dict[str, Any]]:
    """Prometheus metrics created in one module: calls given a `vllm:...` name."""
    tree = ast.parse(source)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: list[dict[str, Any]] = []

    def visit(node: ast.AST, hidden: bool) -> None:
        if isinstance(node, ast.If):
            guarded = hidden or _hidden_guard(node.test)
            for child in node.body:
                visit(child, guarded)
            for child in node.orelse:
                visit(child, hidden)
            return
        if isinstance(node, ast.Call):
            name = _metric_name(node, constants)
            kind = _metric_kind(node)
            if name and kind != "unknown":
                # prometheus_client drops a counter's `_total` and adds it back on exposition.
                if kind == "counter":
                    name = name.removesuffix("_total")
                found.append({"name": name, "kind": kind, "hidden": hidden})
        for child in ast.iter_child_nodes(node):
            visit(child, hidden)

    visit(tree, False)
    # Names built outside a direct call (tables of (name, help) tuples, `name = "vllm:..."`):
    # every string that is exactly a metric name, its kind unknown unless a call above gave it.
    known = {m["name"] for m in found} | {m["name"] + "_total" for m in found}
    for node in ast.walk(tree):
        value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
        if isinstance(value, str) and METRIC_NAME.fullmatch(value) and value not in known:
            found.append({"name": value, "kind": "unknown", "hidden": False})
            known.add(value)
    return found


def imports_of(dotted: str, text: str) -> set[str]:
    """Every module (and `module.name`) an import statement of module `dotted` names."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    package = dotted.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def module_name(path: Path, package_dir: Path) -> str:
    """vllm/v1/metrics/loggers.py -> vllm.v1.metrics.loggers."""
    return ".".join(path.relative_to(package_dir.parent).with_suffix("").parts)


def metrics(package_dir: Path) -> list[dict[str, Any]]:
    """Every metric the package's imported modules define, deduplicated by name (exported beats hidden)."""
    sources = {path: path.read_text(errors="replace") for path in sorted(package_dir.rglob("*.py"))}
    # A module no other module imports is dead code (0.11 still ships the removed V0 engine's
    # metrics module, whose names no server exports).
    imported: set[str] = set()
    for path, text in sources.items():
        imported |= imports_of(module_name(path, package_dir), text)
    by_name: dict[str, dict[str, Any]] = {}
    for path, text in sources.items():
        if "vllm:" not in text or module_name(path, package_dir) not in imported:
            continue
        for metric in metrics_in(text):
            known = by_name.get(metric["name"])
            if known is None or (known["hidden"] and not metric["hidden"]) or known["kind"] == "unknown":
                by_name[metric["name"]] = metric
    return [by_name[name] for name in sorted(by_name)]


def features(top: argparse.ArgumentParser, serve: Any) -> dict[str, bool]:
    """Which probe values the release's parser accepts."""
    result = {}
    for name, argv in FEATURE_PROBES.items():
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # the refusal is the answer, not an error
                parse_serve(top, serve, ["probe/model", *argv])
            result[name] = True
        except (SystemExit, ValueError, TypeError):
            result[name] = False
    return result


def accepted_values() -> dict[str, list[str]]:
    """Values vLLM checks after parsing (the parser has no choices for them), read from the package."""
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS

    return {"quantization": sorted(QUANTIZATION_METHODS)}


def table() -> dict[str, Any]:
    """The whole table of the installed vllm."""
    import vllm

    top, serve_sub, serve = serve_parser()
    return {
        "schema": SCHEMA,
        "generator": "scripts/vllm_table.py",
        "vllm_version": vllm.__version__,
        "allow_abbrev": bool(serve_sub.allow_abbrev),
        "positional": [a.dest for a in serve_sub._actions if not a.option_strings],
        "features": features(top, serve),
        "accepted_values": accepted_values(),
        "options": options(serve_sub),
        "metrics": metrics(Path(vllm.__file__).parent),
    }


def render(data: dict[str, Any]) -> str:
    """The JSON text as checked in: stable order, one option or metric per line (readable diffs)."""
    lines = ["{"]
    items = list(data.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("options", "metrics") and value:
            rows = [json.dumps(row) for row in value]
            body = ",\n".join(f"  {row}" for row in rows)
            lines.append(f" {json.dumps(key)}: [\n{body}\n ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="DIR", help="write DIR/vllm-<version>.json")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from the installed package")
    args = parser.parse_args(argv)
    text = render(table())
    version = json.loads(text)["vllm_version"]
    if args.write:
        out = Path(args.write) / f"vllm-{version}.json"
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)
        return 0
    if args.check:
        committed = Path(args.check).read_text()
        if committed == text:
            print(f"{args.check} matches vllm {version}", file=sys.stderr)
            return 0
        diff = difflib.unified_diff(
            committed.splitlines(), text.splitlines(), args.check, f"vllm {version} (installed)", lineterm="", n=2
        )
        print("\n".join(list(diff)[:200]))
        print(f"{args.check} is stale: run `make vllm-table VERSION={version}`", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
