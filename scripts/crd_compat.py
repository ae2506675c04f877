#!/usr/bin/env python3
"""Flag CRD changes that would break objects already stored in a cluster.

When a CRD is upgraded, the API server keeps serving stored objects through the *new*
schema: a removed property is silently pruned from every object on its next write, a
changed type or a narrowed enum makes stored objects fail validation on update, and a
removed served/storage version makes stored objects unreadable. None of that shows in a
`helm upgrade` that "succeeds". This checker compares two CRDs and lists such changes.

    python scripts/crd_compat.py OLD.yaml NEW.yaml        # exit 1 when something breaks
    python scripts/crd_compat.py --git origin/main        # crds/*.yaml at REF vs the working tree

Pure Python, no cluster. Additions (new optional fields, new versions, wider enums) pass.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Finding:
    version: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.version} {self.path or '.'}: {self.problem}"


def _type(node: dict[str, Any]) -> str | None:
    if node.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return node.get("type")


def compare_schemas(old: dict[str, Any], new: dict[str, Any], version: str, path: str = "") -> list[Finding]:
    """Findings for one OpenAPI v3 schema node and everything below it."""
    found: list[Finding] = []
    old_type, new_type = _type(old), _type(new)
    widened = old_type == "integer" and new_type == "number"
    if old_type and new_type and old_type != new_type and not widened:
        found.append(Finding(version, path, f"type changed from {old_type} to {new_type}"))
        return found
    if "enum" in old and "enum" in new:
        lost = [v for v in old["enum"] if v not in new["enum"]]
        if lost:
            found.append(Finding(version, path, f"enum values removed: {lost}"))
    elif "enum" in new and "enum" not in old:
        found.append(Finding(version, path, f"now restricted to enum {new['enum']}"))
    added_required = sorted(set(new.get("required", [])) - set(old.get("required", [])))
    if added_required:
        found.append(Finding(version, path, f"newly required: {added_required} (stored objects may lack them)"))
    new_props = new.get("properties", {})
    keeps_unknown = bool(new.get("x-kubernetes-preserve-unknown-fields"))
    for name, old_child in old.get("properties", {}).items():
        child_path = f"{path}.{name}"
        if name not in new_props:
            if not keeps_unknown:
                found.append(Finding(version, child_path,
                                     "property removed: the API server prunes it from stored objects"))
            continue
        found += compare_schemas(old_child, new_props[name], version, child_path)
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        found += compare_schemas(old["items"], new["items"], version, f"{path}[]")
    if isinstance(old.get("additionalProperties"), dict) and isinstance(new.get("additionalProperties"), dict):
        found += compare_schemas(old["additionalProperties"], new["additionalProperties"], version, f"{path}{{*}}")
    if old.get("x-kubernetes-preserve-unknown-fields") and not keeps_unknown and not new_props:
        found.append(Finding(version, path, "no longer preserves unknown fields: stored content is pruned"))
    return found


def compare_crds(old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    """Everything in `new` that would break objects stored under `old`."""
    found: list[Finding] = []
    if old["spec"]["group"] != new["spec"]["group"] or old["spec"]["names"]["plural"] != new["spec"]["names"]["plural"]:
        return [Finding("*", "", "group or plural changed: this is a different CRD")]
    new_versions = {v["name"]: v for v in new["spec"]["versions"]}
    for ver in old["spec"]["versions"]:
        name = ver["name"]
        if not (ver.get("served") or ver.get("storage")):
            continue
        if name not in new_versions:
            found.append(Finding(name, "", "version removed: objects stored in it can no longer be read"))
            continue
        if ver.get("served") and not new_versions[name].get("served"):
            found.append(Finding(name, "", "version no longer served: clients using it break"))
        old_schema = ver.get("schema", {}).get("openAPIV3Schema", {})
        new_schema = new_versions[name].get("schema", {}).get("openAPIV3Schema", {})
        found += compare_schemas(old_schema, new_schema, name)
    return found


def _load(text: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        raise SystemExit(f"expected one CustomResourceDefinition, found {len(crds)}")
    return crds[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="OLD.yaml NEW.yaml")
    parser.add_argument("--git", metavar="REF", help="compare crds/*.yaml at REF with the working tree")
    args = parser.parse_args(argv)

    pairs: list[tuple[str, str, str]] = []
    if args.git:
        for path in sorted((ROOT / "crds").glob("*.yaml")):
            rel = path.relative_to(ROOT).as_posix()
            res = subprocess.run(["git", "show", f"{args.git}:{rel}"], cwd=ROOT, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"{rel}: not in {args.git}, nothing to compare")
                continue
            pairs.append((f"{args.git}:{rel}", res.stdout, path.read_text()))
    elif len(args.files) == 2:
        pairs.append((f"{args.files[0]} -> {args.files[1]}", Path(args.files[0]).read_text(),
                      Path(args.files[1]).read_text()))
    else:
        parser.error("give OLD.yaml NEW.yaml, or --git REF")

    failed = False
    for label, old_text, new_text in pairs:
        findings = compare_crds(_load(old_text), _load(new_text))
        for finding in findings:
            print(f"{label}: {finding}")
        failed |= bool(findings)
    if failed:
        print("breaking CRD change: add a new version (with a conversion path) instead, or document a migration",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
