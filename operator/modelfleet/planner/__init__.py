"""GPU fit planning: weights, KV cache and tensor-parallel validity for a vLLM replica.

Pure functions, no I/O except `hfconfig.load_config` reading a file it is given:

* `plan_spec(spec)` -> `FitReport` for an LLMDeployment spec;
* `plan(arch, quantization, gpu_memory_gib, gpus, ...)` -> `FitReport` for explicit inputs;
* `catalog.lookup(hf_id_or_uri)`, `hfconfig.load_config(path)` -> `ModelArch`;
* `gpus.lookup_gpu(product)` -> `GPU`.
"""

from __future__ import annotations

from .arch import ModelArch, kv_cache_bytes_per_token
from .errors import PlanInputError
from .fit import plan, tensor_parallel_problem, valid_tensor_parallel_sizes
from .report import JSON_KEYS, FitReport
from .spec import plan_spec

__all__ = [
    "JSON_KEYS",
    "FitReport",
    "ModelArch",
    "PlanInputError",
    "kv_cache_bytes_per_token",
    "plan",
    "plan_spec",
    "tensor_parallel_problem",
    "valid_tensor_parallel_sizes",
]
