"""Reading LLMDeployments from YAML files for the offline commands, with one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from modelfleet import api, engines


class InputError(ValueError):
    """A file the user gave cannot be used; the message names the file and the field."""


def describe_validation(exc: ValidationError) -> str:
    """The first validation problem as `field.path: message`."""
    err = exc.errors()[0]
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ())).lstrip(".")
    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{path}: {message}" if path else message


def load_llm_deployments(path: str) -> list[api.LLMDeployment]:
    """Every LLMDeployment document in FILE ('-' for stdin); other kinds are ignored."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from None
    found: list[api.LLMDeployment] = []
    for index, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict):
            raise InputError(f"{path}: document {index} is not a mapping")
        if doc.get("kind") != api.KIND:
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            raise InputError(f"{path}: document {index}: metadata.name is required")
        try:
            llm = api.LLMDeployment.model_validate(doc)
        except ValidationError as exc:
            raise InputError(f"{path}: {name}: {describe_validation(exc)}") from None
        problems = engines.spec_problems(llm.spec)
        if problems:
            raise InputError(f"{path}: {name}: {problems[0]}")
        found.append(llm)
    if not found:
        raise InputError(f"{path}: no {api.KIND} found (kind: {api.KIND}, apiVersion: {api.API_VERSION})")
    return found
