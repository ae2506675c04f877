"""The operator's use of the planner: a FitReport -> the Fits condition, status.capacity, maxModelLen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet import api
from modelfleet.planner.errors import PlanInputError
from modelfleet.planner.fit import plan_spec
from modelfleet.planner.report import FitReport
from modelfleet.status import FitVerdict


@dataclass(frozen=True)
class FitOutcome:
    """The verdict for status and the context length to render (None: leave vLLM's default)."""

    verdict: FitVerdict
    max_model_len: int | None
    report: FitReport | None = None


def capacity(report: FitReport) -> dict[str, Any]:
    """status.capacity from a report (only the numbers that are known)."""
    values = {
        "weightsGiB": report.weights_gib,
        "kvCacheTokens": report.kv_cache_tokens,
        "maxConcurrentSequences": report.max_concurrent_sequences,
        "maxModelLen": report.max_model_len,
        "maxModelLenSource": report.max_model_len_source,
        "minTensorParallelSize": report.min_tensor_parallel_size,
    }
    return {k: v for k, v in values.items() if v is not None}


def verdict(report: FitReport) -> FitVerdict:
    """The Fits condition's status, reason and message, with numbers a person can act on."""
    if report.fits is None:
        return FitVerdict(None, "FitUnknown", "; ".join(report.reasons) or "fit could not be checked")
    if report.fits:
        chosen = ""
        if report.max_model_len_source == "planner":
            chosen = f"; maxModelLen {report.max_model_len} chosen by the planner (spec.engine.maxModelLen unset)"
        message = (
            f"weights {report.weights_gib} GiB, KV cache {report.kv_cache_tokens} tokens = "
            f"{report.max_concurrent_sequences} sequences of {report.max_model_len} tokens per replica{chosen}"
        )
        return FitVerdict(True, "Fits", message, capacity(report))
    message = "; ".join(report.reasons)
    if report.suggestion:
        message += f". To fit: {report.suggestion}"
    return FitVerdict(False, "DoesNotFit", message, capacity(report))


def check_fit(llm: api.LLMDeployment) -> FitOutcome:
    """Plan one LLMDeployment; planner input errors become a False verdict, never an exception."""
    try:
        report = plan_spec(llm.spec)
    except PlanInputError as exc:
        return FitOutcome(FitVerdict(False, "InvalidPlanInput", str(exc)), None)
    chosen = report.max_model_len if report.max_model_len_source == "planner" else None
    return FitOutcome(verdict(report), chosen, report)
