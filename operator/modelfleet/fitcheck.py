"""The operator's use of the planner: a FitReport -> the Fits condition, status.capacity, maxModelLen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet import api
from modelfleet.planner.errors import PlanInputError
from modelfleet.planner.report import FitReport
from modelfleet.planner.spec import plan_spec
from modelfleet.status import FitVerdict


@dataclass(frozen=True)
class FitOutcome:
    """The verdict for status and the planner's context length when the spec sets none.

    `max_model_len` is the planner's choice for a spec without engine.maxModelLen (None when
    the spec sets one, or the model's own maximum fits). A vLLM release that can choose by
    itself (`--max-model-len auto`) should be left to do so: the rendering decides, and the
    planner's figure stays the estimate shown in status.capacity and the Fits message.
    """

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
            chosen = (
                f"; spec.engine.maxModelLen unset: the planner estimates {report.max_model_len} tokens fit "
                "(vLLM picks the length itself where it can)"
            )
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
