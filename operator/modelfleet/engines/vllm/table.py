"""One vLLM release's `vllm serve` options and Prometheus metrics, read from checked-in data.

The data files (`data/vllm-<version>.json`) are generated from the `vllm` package itself by
`scripts/vllm_table.py` (`make vllm-table VERSION=x.y.z`); nothing here is typed by hand.
Lookups follow vLLM's own argument parser: `_` and `-` are the same inside a long option
(FlexibleArgumentParser rewrites `--max_model_len` to `--max-model-len`), `--flag=value` is
split at the first `=`, and an unambiguous prefix of a long option selects it (argparse's
allow_abbrev, which vLLM keeps on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from typing import Any

DATA_PACKAGE = "modelfleet.engines.vllm.data"


@dataclass(frozen=True)
class Option:
    """One `vllm serve` option as vLLM's parser defines it."""

    option_strings: tuple[str, ...]  # every spelling, e.g. ("--tensor-parallel-size", "-tp")
    dest: str  # the argparse destination, e.g. "tensor_parallel_size"
    takes_value: bool  # False for switches (store_true/false, BooleanOptionalAction)
    boolean: bool  # a switch with a `--no-` form or a store_true/store_false
    negative: tuple[str, ...]  # the `--no-...` spellings that set dest to False
    choices: tuple[str, ...] | None  # allowed values, when the parser restricts them
    nargs: str | None  # argparse nargs ("?", "+", "*", a number as text) or None for one value
    type: str | None  # the name of the parser's type callable, e.g. "int", "float", "human_readable_int"


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric the release defines."""

    name: str  # e.g. "vllm:num_requests_waiting" (counters without the `_total` suffix)
    kind: str  # gauge, counter, histogram (or unknown)
    hidden: bool  # only exported with --show-hidden-metrics-for-version (deprecated names)


@dataclass(frozen=True)
class FlagTable:
    """Every option and metric of one vLLM version, with the lookups the operator needs."""

    version: str
    options: tuple[Option, ...]
    metrics: tuple[Metric, ...]
    positional: tuple[str, ...]  # dests of the positional arguments of `vllm serve` (model_tag)
    allow_abbrev: bool = True  # whether the parser accepts unambiguous prefixes of long options
    features: Mapping[str, bool] = field(default_factory=dict)  # probe results, e.g. max_model_len_auto
    # Values vLLM checks after parsing, for options the parser leaves open (quantization methods).
    accepted_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @cached_property
    def by_option(self) -> dict[str, Option]:
        """Option string -> option (every spelling, including `--no-` forms and short forms)."""
        return {name: option for option in self.options for name in option.option_strings}

    def option_strings(self) -> list[str]:
        """Every option string `vllm serve` accepts, sorted."""
        return sorted(self.by_option)

    def resolve(self, token: str) -> Option | None:
        """The option a command-line token selects as vLLM parses it, or None (unknown or ambiguous).

        `--max_model_len=4096`, `--max-model-len` and the prefix `--max-model-l` all resolve to
        max_model_len; `--max` is ambiguous and gives None (see `candidates`).
        """
        found = self.candidates(token)
        return found[0] if len(found) == 1 else None

    def candidates(self, token: str) -> list[Option]:
        """Every option a token may select: one for an exact or unambiguous match, several for an
        ambiguous prefix, none for an unknown option or a non-option token."""
        flag = normalize(token)
        if not flag.startswith("-"):
            return []
        index = self.by_option
        if flag in index:
            return [index[flag]]
        if not flag.startswith("--") or not self.allow_abbrev:
            return []
        matches = {id(o): o for name, o in index.items() if name.startswith(flag)}
        return list(matches.values())

    def sets_false(self, token: str) -> bool:
        """True when the token is (an unambiguous prefix of) a `--no-` form."""
        option = self.resolve(token)
        if option is None:
            return False
        flag = normalize(token)
        if flag in option.option_strings:
            return flag in option.negative
        return all(n in option.negative for n in option.option_strings if n.startswith(flag))

    def dest(self, dest: str) -> Option | None:
        """The option with this argparse destination, if the version has one."""
        for option in self.options:
            if option.dest == dest:
                return option
        return None

    def choices(self, dest: str) -> tuple[str, ...]:
        """Allowed values of an option (e.g. `quantization`, `kv_cache_dtype`): the parser's choices,
        else the values vLLM checks after parsing; empty when the option is free or absent."""
        option = self.dest(dest)
        if option is None:
            return ()
        return option.choices or self.accepted_values.get(dest, ())

    def has_metric(self, name: str, *, include_hidden: bool = False) -> bool:
        """Whether this version exports the metric (by default only names exported without opt-in)."""
        return any(m.name == name and (include_hidden or not m.hidden) for m in self.metrics)

    def metric_names(self, *, include_hidden: bool = False) -> list[str]:
        """Every metric name the version exports, sorted."""
        return sorted(m.name for m in self.metrics if include_hidden or not m.hidden)


def normalize(token: str) -> str:
    """A token as vLLM's FlexibleArgumentParser sees the option part: value cut, `_` -> `-`."""
    flag = token.split("=", 1)[0]
    if flag.startswith("--"):
        return "--" + flag[2:].replace("_", "-")
    return flag


def from_json(data: dict[str, Any]) -> FlagTable:
    """A FlagTable from the generator's JSON document."""
    options = tuple(
        Option(
            option_strings=tuple(o["option_strings"]),
            dest=o["dest"],
            takes_value=o["takes_value"],
            boolean=o["boolean"],
            negative=tuple(o.get("negative", ())),
            choices=tuple(o["choices"]) if o.get("choices") is not None else None,
            nargs=o.get("nargs"),
            type=o.get("type"),
        )
        for o in data["options"]
    )
    metrics = tuple(Metric(m["name"], m["kind"], m["hidden"]) for m in data["metrics"])
    return FlagTable(
        str(data["vllm_version"]),
        options,
        metrics,
        tuple(data.get("positional", ())),
        bool(data.get("allow_abbrev", True)),
        dict(data.get("features", {})),
        {k: tuple(v) for k, v in data.get("accepted_values", {}).items()},
    )


def data_file(version: str) -> str:
    """The data file name of a version."""
    return f"vllm-{version}.json"


@cache
def load(version: str) -> FlagTable:
    """The checked-in table of one version; KeyError when there is none."""
    try:
        text = resources.files(DATA_PACKAGE).joinpath(data_file(version)).read_text()
    except FileNotFoundError:
        raise KeyError(version) from None
    return from_json(json.loads(text))
