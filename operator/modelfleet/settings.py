"""Operator settings from the environment (the Helm chart sets these) and `modelfleet run` flags."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal

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
        )
