"""Operator settings from the environment (the Helm chart sets these) and `modelfleet run` flags."""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from modelfleet.cache import CacheDefaults

MetricsMode = Literal["prometheus", "scrape", "off"]
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting has a value the operator cannot use."""


# One PromQL label matcher, `name="value"` (also !=, =~, !~); the value is a double-quoted string.
_MATCHER = r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\\n]|\\.)*)"\s*'
# The labels the query groups by: a matcher on them would hide or merge deployments.
RESERVED_SELECTOR_LABELS = ("namespace", "modelfleet_io_deployment", "__name__")


def parse_selector(raw: str) -> str:
    """Validate MODELFLEET_PROMETHEUS_SELECTOR (e.g. `job="vllm",cluster="prod"`); returns it normalised."""
    if not raw.strip():
        return ""
    if re.fullmatch(rf"{_MATCHER}(,{_MATCHER})*", raw) is None:
        raise SettingsError(
            f"MODELFLEET_PROMETHEUS_SELECTOR={raw!r} is not a list of PromQL label matchers; "
            'expected e.g. job="vllm",cluster="prod"'
        )
    matchers = []
    for name, op, value in re.findall(_MATCHER, raw):
        if name in RESERVED_SELECTOR_LABELS:
            raise SettingsError(f"MODELFLEET_PROMETHEUS_SELECTOR: {name} is matched by the operator; use job, cluster")
        matchers.append(f'{name}{op}"{value}"')
    return ",".join(matchers)


def _int(env: dict[str, str], key: str, default: int) -> int:
    raw = env.get(key, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{key}={raw!r} is not a whole number") from None
    if value <= 0:
        raise SettingsError(f"{key}={raw!r} must be positive")
    return value


def _bool(env: dict[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false", "1", "0", "yes", "no"):
        raise SettingsError(f"{key}={raw!r}: use true or false")
    return raw in ("true", "1", "yes")


# Where a pod finds its own namespace; outside a pod the file is absent and `default` is used.
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_lease_namespace(env: dict[str, str]) -> str:
    """POD_NAMESPACE, else the pod's service-account namespace, else `default` (a local `modelfleet run`)."""
    if env.get("POD_NAMESPACE"):
        return env["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def default_identity(env: dict[str, str]) -> str:
    """POD_NAME, else host name and process id: unique per process, so two local operators differ."""
    return env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Settings:
    """Everything the operator process can be told."""

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    prometheus_url: str = ""
    prometheus_selector: str = ""  # extra PromQL matchers, e.g. job="vllm",cluster="prod"
    metrics_mode: MetricsMode = "prometheus"
    log_level: str = "info"
    health_port: int = 8080
    metrics_port: int = 9090
    resync_seconds: int = 60
    autoscale_interval_seconds: int = 15
    metrics_timeout_seconds: int = 5
    stale_after_seconds: int = 60
    # Every Kubernetes call: seconds to connect and to wait for the answer (a half-open
    # connection then fails the call instead of parking a worker for good).
    api_connect_timeout_seconds: int = 5
    api_read_timeout_seconds: int = 20
    # Fleet scale: client-side rate limit on API calls (a token bucket, like client-go's QPS/burst;
    # Lease renewals are exempt) and how many reconciles may run at once.
    api_qps: int = 100
    api_burst: int = 200
    max_concurrent_reconciles: int = 16
    # Leader election on a coordination.k8s.io Lease (see leader.py for the timing argument).
    leader_election: bool = True
    lease_name: str = "modelfleet"
    lease_namespace: str = "default"
    identity: str = ""
    lease_duration_seconds: int = 8
    lease_renew_deadline_seconds: int = 5
    lease_retry_seconds: int = 2
    cache: CacheDefaults = field(default_factory=CacheDefaults)  # spec.model.cache defaults (chart values cache.*)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read MODELFLEET_* variables; raises SettingsError naming the bad one."""
        env = dict(os.environ if env is None else env)
        mode = env.get("MODELFLEET_METRICS_MODE", "prometheus") or "prometheus"
        if mode not in ("prometheus", "scrape", "off"):
            raise SettingsError(f"MODELFLEET_METRICS_MODE={mode!r}: use prometheus, scrape or off")
        level = (env.get("MODELFLEET_LOG_LEVEL", "info") or "info").lower()
        if level not in LOG_LEVELS:
            raise SettingsError(f"MODELFLEET_LOG_LEVEL={level!r}: use one of {', '.join(LOG_LEVELS)}")
        url = env.get("MODELFLEET_PROMETHEUS_URL", "").rstrip("/")
        if url and not url.startswith(("http://", "https://")):
            raise SettingsError(f"MODELFLEET_PROMETHEUS_URL={url!r} must start with http:// or https://")
        namespaces = tuple(n.strip() for n in env.get("MODELFLEET_NAMESPACES", "").split(",") if n.strip())
        return cls(
            namespaces=namespaces,
            prometheus_url=url,
            prometheus_selector=parse_selector(env.get("MODELFLEET_PROMETHEUS_SELECTOR", "")),
            metrics_mode=mode,  # type: ignore[arg-type]
            log_level=level,
            health_port=_int(env, "MODELFLEET_HEALTH_PORT", 8080),
            metrics_port=_int(env, "MODELFLEET_METRICS_PORT", 9090),
            resync_seconds=_int(env, "MODELFLEET_RESYNC_SECONDS", 60),
            autoscale_interval_seconds=_int(env, "MODELFLEET_AUTOSCALE_INTERVAL_SECONDS", 15),
            metrics_timeout_seconds=_int(env, "MODELFLEET_METRICS_TIMEOUT_SECONDS", 5),
            stale_after_seconds=_int(env, "MODELFLEET_STALE_AFTER_SECONDS", 60),
            api_connect_timeout_seconds=_int(env, "MODELFLEET_API_CONNECT_TIMEOUT_SECONDS", 5),
            api_read_timeout_seconds=_int(env, "MODELFLEET_API_READ_TIMEOUT_SECONDS", 20),
            api_qps=_int(env, "MODELFLEET_API_QPS", 100),
            api_burst=_int(env, "MODELFLEET_API_BURST", 200),
            max_concurrent_reconciles=_int(env, "MODELFLEET_MAX_CONCURRENT_RECONCILES", 16),
            leader_election=_bool(env, "MODELFLEET_LEADER_ELECTION", True),
            lease_name=env.get("MODELFLEET_LEASE_NAME", "") or "modelfleet",
            lease_namespace=env.get("MODELFLEET_LEASE_NAMESPACE", "") or default_lease_namespace(env),
            identity=env.get("MODELFLEET_IDENTITY", "") or default_identity(env),
            lease_duration_seconds=_int(env, "MODELFLEET_LEASE_DURATION_SECONDS", 8),
            lease_renew_deadline_seconds=_int(env, "MODELFLEET_LEASE_RENEW_DEADLINE_SECONDS", 5),
            lease_retry_seconds=_int(env, "MODELFLEET_LEASE_RETRY_SECONDS", 2),
            cache=cache_defaults(env),
        ).checked()

    def checked(self) -> Settings:
        """Refuse lease timings that would let two leaders act at once."""
        if not self.lease_retry_seconds < self.lease_renew_deadline_seconds < self.lease_duration_seconds:
            raise SettingsError(
                "lease timings must satisfy retry < renew deadline < duration, got "
                f"{self.lease_retry_seconds} / {self.lease_renew_deadline_seconds} / {self.lease_duration_seconds}"
            )
        return self


ACCESS_MODES = ("ReadWriteMany", "ReadWriteOnce")


def cache_defaults(env: dict[str, str]) -> CacheDefaults:
    """The model-cache defaults from MODELFLEET_CACHE_* (the chart's cache.* values)."""
    mode = env.get("MODELFLEET_CACHE_ACCESS_MODE", "") or "ReadWriteMany"
    if mode not in ACCESS_MODES:
        raise SettingsError(f"MODELFLEET_CACHE_ACCESS_MODE={mode!r}: use {' or '.join(ACCESS_MODES)}")
    storage_class = env.get("MODELFLEET_CACHE_STORAGE_CLASS", "").strip() or None
    if storage_class and not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", storage_class):
        raise SettingsError(f"MODELFLEET_CACHE_STORAGE_CLASS={storage_class!r} is not a StorageClass name")
    backoff = env.get("MODELFLEET_CACHE_BACKOFF_LIMIT", "").strip()
    if backoff and not backoff.isdigit():
        raise SettingsError(f"MODELFLEET_CACHE_BACKOFF_LIMIT={backoff!r} is not a whole number >= 0")
    return CacheDefaults(
        enabled=_bool(env, "MODELFLEET_CACHE_ENABLED", False),
        storage_class_name=storage_class,
        access_mode=mode,
        headroom_percent=_int(env, "MODELFLEET_CACHE_HEADROOM_PERCENT", 10),
        backoff_limit=int(backoff) if backoff else 6,
    )
