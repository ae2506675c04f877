"""The vLLM engine: one supported release, its image, arguments, metric names and refusals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from modelfleet.engines.base import EngineSpecError, MetricNames
from modelfleet.engines.vllm import argcheck
from modelfleet.engines.vllm import args as vllm_args
from modelfleet.engines.vllm import cache as vllm_cache
from modelfleet.engines.vllm.owned import OWNED_DESTS, OWNED_ENV, owned_flags
from modelfleet.engines.vllm.table import FlagTable
from modelfleet.engines.vllm.table import load as load_table
from modelfleet.engines.vllm.versions import DEFAULT_VERSION, SUPPORTED_VERSIONS, image_for, version_of_image

if TYPE_CHECKING:
    from modelfleet.api import EngineSpec, LLMDeploymentSpec

# Metric roles -> names in order of preference; a release uses the first it exports by default.
METRIC_ROLES: dict[str, tuple[str, ...]] = {
    "waiting": ("vllm:num_requests_waiting",),
    "running": ("vllm:num_requests_running",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "ttft": ("vllm:time_to_first_token_seconds",),
}


def _supported() -> str:
    return ", ".join(SUPPORTED_VERSIONS)


def resolve_version(version: str | None, image: str | None) -> str:
    """The release whose flag table applies: spec.engine.version, else the official image's tag,
    else the pinned default; a custom image without a version, an unsupported release or a
    version that contradicts the image tag raise EngineSpecError."""
    tagged = version_of_image(image) if image else None
    if version:
        if version not in SUPPORTED_VERSIONS:
            detail = f"not a supported vLLM release (supported: {_supported()})"
            raise EngineSpecError("engine.version", version, None, detail)
        if tagged and tagged != version:
            detail = (
                f"the image tag says vLLM {tagged} but spec.engine.version is {version}; "
                "remove spec.engine.image (it defaults from the version) or make them agree"
            )
            raise EngineSpecError("engine.image", image, version, detail)
        return version
    if not image:
        return DEFAULT_VERSION
    if tagged:
        if tagged in SUPPORTED_VERSIONS:
            return tagged
        detail = (
            f"not a supported vLLM release (supported: {_supported()}); "
            f"set spec.engine.version and drop spec.engine.image to use {image_for(DEFAULT_VERSION)}"
        )
        raise EngineSpecError("engine.image", image, tagged, detail)
    detail = (
        f"a custom image ({image}) needs spec.engine.version to say which vLLM release it carries "
        f"(supported: {_supported()}), so that its own flags are rendered"
    )
    raise EngineSpecError("engine.version", "<unset>", None, detail)


def metric_names(table: FlagTable) -> MetricNames:
    """The names a release exports by default for each role the operator reads."""
    chosen: dict[str, str] = {}
    for role, names in METRIC_ROLES.items():
        exported = [n for n in names if table.has_metric(n)]
        if not exported:
            raise KeyError(f"vLLM {table.version} exports none of {names} ({role})")
        chosen[role] = exported[0]
    return MetricNames(**chosen)


@dataclass(frozen=True)
class VLLMEngine:
    """One vLLM release with an image (the official one unless the spec names another)."""

    version: str
    image: str
    name: str = "vllm"
    command: list[str] = field(default_factory=lambda: list(vllm_args.COMMAND))
    port: int = vllm_args.PORT
    health_path: str = vllm_args.HEALTH_PATH
    metrics_path: str = vllm_args.METRICS_PATH
    owned_env: Mapping[str, str] = field(default_factory=lambda: dict(OWNED_ENV))

    @cached_property
    def table(self) -> FlagTable:
        """The release's flag-and-metric table."""
        return load_table(self.version)

    @cached_property
    def metrics(self) -> MetricNames:
        """Metric names this release exports."""
        return metric_names(self.table)

    @cached_property
    def owned_flags(self) -> Mapping[str, str]:
        """Every spelling of an owned option in this release -> the spec field that owns it."""
        return owned_flags(self.table)

    def args(
        self, spec: LLMDeploymentSpec, served_name: str, planned_max_model_len: int | None, models_mount: str
    ) -> list[str]:
        """`vllm serve` arguments (after the command)."""
        return vllm_args.serve_args(spec, served_name, planned_max_model_len, self.table, models_mount)

    def env(self, spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
        """Container environment."""
        return vllm_args.env(spec)

    cache_mount: str = vllm_cache.CACHE_MOUNT

    def cache_env(self) -> list[dict[str, Any]]:
        """Extra environment of a replica that serves from the shared model cache (offline, read-only)."""
        return list(vllm_cache.replica_env())

    def problems(self, spec: LLMDeploymentSpec) -> list[EngineSpecError]:
        """Spec values this release's parser would refuse (quantization method, KV-cache dtype), and
        engine.args items it would read differently from what the spec says (argcheck)."""
        found = []
        checks = (
            ("quantization", "quantization", str(spec.quantization), "none"),
            ("engine.kvCacheDtype", "kv_cache_dtype", str(spec.engine.kv_cache_dtype), "auto"),
        )
        for field_path, dest, value, neutral in checks:
            allowed = self.table.choices(dest)
            if value != neutral and allowed and value not in allowed:
                detail = f"this release does not accept it (it accepts: {', '.join(allowed)})"
                found.append(EngineSpecError(field_path, value, self.version, detail))
        for problem in argcheck.check(spec.engine.args, self.table, OWNED_DESTS):
            found.append(EngineSpecError(problem.field, problem.flag, self.version, problem.detail))
        return found


def engine_for(engine_spec: EngineSpec) -> VLLMEngine:
    """The engine for spec.engine (raises EngineSpecError when no supported release applies)."""
    version = resolve_version(engine_spec.version, engine_spec.image)
    return VLLMEngine(version=version, image=engine_spec.image or image_for(version))
