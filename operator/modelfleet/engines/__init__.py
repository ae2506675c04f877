"""Everything engine-specific lives under this package, behind one small interface.

Only modules here may name a vLLM flag, environment variable or metric, or model the
engine's GPU memory use; render, the planner, the autoscaler and the CRD generator ask it.

    from modelfleet import engines
    engine = engines.engine_for(llm.spec.engine)     # the release + image a spec runs
    engine.args(spec, served_name, planned_len, mount); engine.env(spec); engine.metrics.waiting
    engines.spec_problems(llm.spec)                  # what the release cannot do, [] when fine

vLLM's per-release option tables (for checking passthrough args): `modelfleet.engines.vllm`,
e.g. `vllm.flag_table("0.32.0").resolve("--max_model_len=4096")`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelfleet.engines.base import Engine, EngineSpecError, MetricNames
from modelfleet.engines.vllm.engine import VLLMEngine
from modelfleet.engines.vllm.engine import engine_for as _vllm_engine_for

if TYPE_CHECKING:
    from modelfleet.api import EngineSpec, LLMDeploymentSpec

__all__ = ["Engine", "EngineSpecError", "MetricNames", "VLLMEngine", "engine_for", "spec_problems"]


def engine_for(engine_spec: EngineSpec) -> VLLMEngine:
    """The engine release a spec.engine selects; raises EngineSpecError when none applies."""
    return _vllm_engine_for(engine_spec)


def spec_problems(spec: LLMDeploymentSpec) -> list[EngineSpecError]:
    """Everything in a spec its engine release cannot do (unsupported release, values it lacks)."""
    try:
        engine = engine_for(spec.engine)
    except EngineSpecError as exc:
        return [exc]
    return engine.problems(spec)
