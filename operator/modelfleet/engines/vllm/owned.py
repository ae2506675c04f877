"""The `vllm serve` options and environment variables that spec fields own.

An option is owned through its argparse destination, so every spelling a release accepts
(`-tp`, `--tensor_parallel_size`, `--no-enable-prefix-caching`, ...) is owned with it.
"""

from __future__ import annotations

from modelfleet.engines.vllm import env
from modelfleet.engines.vllm.table import FlagTable
from modelfleet.engines.vllm.table import load as load_table
from modelfleet.engines.vllm.versions import SUPPORTED_VERSIONS

# argparse destination -> the spec field (or fixed choice) that sets it.
OWNED_DESTS: dict[str, str] = {
    "model_tag": "model.uri",
    "model": "model.uri",
    "served_model_name": "model.servedName",
    "revision": "model.revision",
    "tensor_parallel_size": "gpu.count",
    "quantization": "quantization",
    "max_model_len": "engine.maxModelLen",
    "gpu_memory_utilization": "engine.gpuMemoryUtilization",
    "max_num_seqs": "engine.maxNumSeqs",
    "enable_prefix_caching": "engine.enablePrefixCaching",
    "kv_cache_dtype": "engine.kvCacheDtype",
    "port": "the fixed port 8000",
    "host": "the pod network",
    "api_key": "apiKeySecretRef",
}

# Environment variables the operator owns -> the spec field (or purpose) that owns them: the one
# list lives in env.py (with the families refused by prefix, HF_HUB_*, AWS_*, ...).
OWNED_ENV = env.OWNED_ENV


def owned_flags(table: FlagTable) -> dict[str, str]:
    """Every option string of one release that a spec field owns -> that field."""
    return {
        name: OWNED_DESTS[option.dest]
        for option in table.options
        if option.dest in OWNED_DESTS
        for name in option.option_strings
    }


def owned_flags_all_versions() -> dict[str, str]:
    """The union over the supported releases (what the CRD's CEL rule refuses, version-blind)."""
    merged: dict[str, str] = {}
    for version in SUPPORTED_VERSIONS:
        merged.update(owned_flags(load_table(version)))
    return dict(sorted(merged.items()))
