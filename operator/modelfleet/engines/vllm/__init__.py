"""vLLM: supported versions, their flag and metric tables, argument rendering and memory model.

The lookup API for other modules (all pure, data from data/vllm-<version>.json):

    from modelfleet.engines import vllm
    vllm.SUPPORTED_VERSIONS, vllm.DEFAULT_VERSION         # ("0.32.0", "0.11.0"), "0.32.0"
    table = vllm.flag_table("0.32.0")                     # FlagTable; KeyError for unknown versions
    table.resolve("--max_model_len=4096")                 # Option(dest="max_model_len", ...) as vLLM parses it
    table.candidates("--max")                             # several Options: an ambiguous prefix
    table.option_strings()                                # every option string, incl. --no- forms
    table.choices("quantization"), table.choices("kv_cache_dtype")
    table.sets_false("--no-enable-prefix-caching")        # True
    vllm.owned_flags("0.32.0")                            # option string -> owning spec field
    vllm.OWNED_DESTS, vllm.OWNED_ENV                      # dest / env name -> owning spec field
    vllm.metric_names("0.32.0").waiting                   # "vllm:num_requests_waiting"
    vllm.role_names("kv_cache_usage")                     # every KV-usage name a supported release exports
"""

from __future__ import annotations

from modelfleet.engines.base import MetricNames
from modelfleet.engines.vllm import owned as _owned
from modelfleet.engines.vllm.engine import METRIC_ROLES, VLLMEngine, resolve_version
from modelfleet.engines.vllm.engine import metric_names as _metric_names
from modelfleet.engines.vllm.owned import OWNED_DESTS, OWNED_ENV, owned_flags_all_versions
from modelfleet.engines.vllm.table import FlagTable, Metric, Option, normalize
from modelfleet.engines.vllm.table import load as flag_table
from modelfleet.engines.vllm.versions import (
    DEFAULT_VERSION,
    IMAGE_REPOSITORY,
    OFFICIAL_IMAGE_PATTERN,
    SUPPORTED_VERSIONS,
    image_for,
    version_of_image,
)

__all__ = [
    "DEFAULT_VERSION",
    "IMAGE_REPOSITORY",
    "OFFICIAL_IMAGE_PATTERN",
    "OWNED_DESTS",
    "OWNED_ENV",
    "SUPPORTED_VERSIONS",
    "FlagTable",
    "Metric",
    "MetricNames",
    "Option",
    "VLLMEngine",
    "flag_table",
    "image_for",
    "metric_names",
    "normalize",
    "owned_flags",
    "owned_flags_all_versions",
    "resolve_version",
    "role_names",
    "version_of_image",
]


def owned_flags(version: str) -> dict[str, str]:
    """Every option string of a release that a spec field owns -> that field."""
    return _owned.owned_flags(flag_table(version))


def role_names(role: str) -> tuple[str, ...]:
    """The names any supported release can export for a metric role (a MetricNames field), in
    preference order, including deprecated names a release exports only on opt-in
    (--show-hidden-metrics-for-version): what a query across a mixed fleet must accept."""
    names: list[str] = []
    for candidate in METRIC_ROLES[role]:
        if any(flag_table(v).has_metric(candidate, include_hidden=True) for v in SUPPORTED_VERSIONS):
            names.append(candidate)
    return tuple(names)


def metric_names(version: str) -> MetricNames:
    """The metric names a release exports by default (waiting, running, KV usage, TTFT)."""
    return _metric_names(flag_table(version))
