"""Pure: how long a replica may take to start before its startup probe gives up, from the model's size.

A vLLM replica starts in three slow phases: getting the checkpoint (downloading it from the Hub into
the pod's cache, unless it comes from the shared model cache, a PVC or object storage), loading it
(disk -> RAM -> GPU) and warming up (CUDA graphs, compilation). The probe budget covers all three at
stated, conservative rates, and never goes below the 1800 s every earlier release used, so a budget
computed from the size only ever lengthens it.
"""

from __future__ import annotations

import math

from modelfleet import api

MIB = 1024**2
# Stated rates (conservative on purpose: a probe that is too short kills a healthy load):
DOWNLOAD_BYTES_PER_SECOND = 50 * MIB  # one pod pulling from the Hub (shared, rate-limited egress)
LOAD_BYTES_PER_SECOND = 200 * MIB  # safetensors from a network volume into GPU memory
WARMUP_SECONDS = 300  # engine start, profiling, CUDA graph capture, torch.compile
FLOOR_SECONDS = 1800  # the fixed budget before it came from the model size
CEILING_SECONDS = 86400


def downloads_in_pod(spec: api.LLMDeploymentSpec, shared_cache: bool) -> bool:
    """The replica fetches the checkpoint itself (hf:// without the shared cache)."""
    return spec.model.uri.startswith("hf://") and not shared_cache


def budget_seconds(spec: api.LLMDeploymentSpec, checkpoint_bytes: int | None, shared_cache: bool) -> int:
    """spec.engine.startupTimeoutSeconds, else warm-up + download (when the pod downloads) + load, at least
    FLOOR_SECONDS; FLOOR_SECONDS when the model's size is unknown."""
    if spec.engine.startup_timeout_seconds is not None:
        return spec.engine.startup_timeout_seconds
    if checkpoint_bytes is None:
        return FLOOR_SECONDS
    seconds = WARMUP_SECONDS + checkpoint_bytes / LOAD_BYTES_PER_SECOND
    if downloads_in_pod(spec, shared_cache):
        seconds += checkpoint_bytes / DOWNLOAD_BYTES_PER_SECOND
    return min(CEILING_SECONDS, max(FLOOR_SECONDS, 10 * math.ceil(seconds / 10)))
