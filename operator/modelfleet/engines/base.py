"""The interface every engine implements, and the error a spec gets when its engine cannot serve it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelfleet.api import LLMDeploymentSpec


@dataclass(frozen=True)
class MetricNames:
    """The Prometheus series the autoscaler and dashboards read, as one release names them."""

    waiting: str  # requests queued, not yet scheduled (the scaling signal)
    running: str  # requests in the running batch
    kv_cache_usage: str  # KV-cache usage, 0..1
    ttft: str  # time-to-first-token histogram (base name, without _bucket/_sum/_count)


class EngineSpecError(ValueError):
    """A spec asks for something the chosen engine release does not have: one message that
    names the field, the value and the release, and what to do instead."""

    def __init__(self, field: str, value: object, version: str | None, detail: str) -> None:
        self.field = field
        self.value = value
        self.version = version
        where = f" (vLLM {version})" if version else ""
        super().__init__(f"spec.{field}: {value}{where}: {detail}")


class Engine(Protocol):
    """One engine release: how to run it, what it is told, what it reports.

    The planner picks its memory model by `name` and `version`
    (vLLM: `modelfleet.engines.vllm.memory`).
    """

    @property
    def name(self) -> str:
        """The engine, e.g. "vllm"."""
        ...

    @property
    def version(self) -> str:
        """The release whose flag table applies, e.g. "0.32.0"."""
        ...

    @property
    def image(self) -> str:
        """The container image to run."""
        ...

    @property
    def command(self) -> list[str]:
        """The container command (arguments follow)."""
        ...

    @property
    def port(self) -> int:
        """The HTTP port of the OpenAI API, /health and /metrics."""
        ...

    @property
    def health_path(self) -> str:
        """Path the probes poll."""
        ...

    @property
    def metrics_path(self) -> str:
        """Path Prometheus scrapes."""
        ...

    @property
    def metrics(self) -> MetricNames:
        """Metric names this release exports."""
        ...

    @property
    def owned_flags(self) -> Mapping[str, str]:
        """Option string -> the spec field that owns it."""
        ...

    @property
    def owned_env(self) -> Mapping[str, str]:
        """Environment variable -> the spec field that owns it."""
        ...

    def args(
        self, spec: LLMDeploymentSpec, served_name: str, planned_max_model_len: int | None, models_mount: str
    ) -> list[str]:
        """The server's command-line arguments for a spec."""
        ...

    def env(self, spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
        """The container's environment entries for a spec."""
        ...

    @property
    def cache_mount(self) -> str:
        """Where a replica mounts the shared model cache (read-only)."""
        ...

    def cache_env(self) -> list[dict[str, Any]]:
        """Extra environment of a replica that serves from the shared model cache."""
        ...

    def problems(self, spec: LLMDeploymentSpec) -> list[EngineSpecError]:
        """What in the spec this release cannot do (empty: it can serve it)."""
        ...
