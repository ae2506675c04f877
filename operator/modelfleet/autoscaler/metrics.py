"""The autoscaler's only metrics I/O: one batched PromQL query, or a direct scrape of pods.

Both sources are blocking (``requests`` / ``urllib``): call ``fetch`` through
``asyncio.to_thread`` (``loop.run_cycle`` does), never on kopf's event loop.

Label contract: vLLM pods' series reach Prometheus with ``namespace`` and
``modelfleet_io_deployment`` (the relabelled pod label ``modelfleet.io/deployment``; the chart's
PodMonitor and the e2e file-sd targets set both). Pods are counted by ``instance``; per-pod
running requests (for pod-deletion-cost) are returned when series carry a ``pod`` label.
"""

from __future__ import annotations

import math
import re
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from modelfleet.engines import vllm as _vllm

DeploymentKey = tuple[str, str]  # (namespace, LLMDeployment name)

NS_LABEL = "namespace"
DEPLOYMENT_LABEL = "modelfleet_io_deployment"
# Metric names come from the engine's per-release tables (generated from vLLM itself).
WAITING = _vllm.role_names("waiting")[0]
RUNNING = _vllm.role_names("running")[0]
KV_USAGE = _vllm.role_names("kv_cache_usage")[0]
# The deprecated KV name, while a supported release can still export it (vLLM 0.11 does, with
# --show-hidden-metrics-for-version=0.10); the current name again once none can.
KV_USAGE_OLD = _vllm.role_names("kv_cache_usage")[-1]


class MetricsError(Exception):
    """The metrics source failed as a whole (unreachable, timeout, garbage); the loop holds."""


@dataclass(frozen=True)
class Signals:
    """One LLMDeployment's signals, summed (waiting, running) or averaged (kv) over its pods."""

    waiting: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None
    pods: int = 0
    age_seconds: float | None = None
    pod_running: Mapping[str, float] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # samples left out, with the reason (not finite, negative)


def unusable(value: float) -> str | None:
    """Why a sample cannot be used, or None: NaN (no data), ±Inf (a broken exporter or division by
    zero) and negatives (counts and fractions are never below zero) would each turn a replica
    decision into nonsense (`math.ceil(inf)` raises)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value < 0:
        return f"negative ({value:g})"
    return None


class MetricsSource(Protocol):
    """What ``run_cycle`` needs. ``pod_urls`` is only used by sources that scrape pods."""

    def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]]) -> dict[DeploymentKey, Signals]:
        """All deployments' signals in one go; raises :class:`MetricsError`."""
        ...


def scoped_selector(extra: str = "") -> str:
    """The series selector: every modelfleet deployment, narrowed by the operator's extra matchers
    (MODELFLEET_PROMETHEUS_SELECTOR, e.g. `job="vllm",cluster="prod"` on a shared Thanos or Mimir,
    or `job="..."` to count one of two scrapes of the same pods)."""
    base = f'{DEPLOYMENT_LABEL}!=""'
    return f"{base},{extra}" if extra else base


def build_query(selector: str = f'{DEPLOYMENT_LABEL}!=""') -> str:
    """The one PromQL expression per cycle: every signal of every deployment, tagged by ``signal``."""
    by = f"{NS_LABEL}, {DEPLOYMENT_LABEL}"
    sel = "{" + selector + "}"

    def tag(expr: str, name: str) -> str:
        return f'label_replace({expr}, "signal", "{name}", "", "")'

    return " or ".join([
        tag(f"sum by ({by}) ({WAITING}{sel})", "waiting"),
        tag(f"sum by ({by}) ({RUNNING}{sel})", "running"),
        tag(f"avg by ({by}) ({KV_USAGE}{sel}) or avg by ({by}) ({KV_USAGE_OLD}{sel})", "kv"),
        tag(f"count by ({by}) (count by ({by}, instance) ({WAITING}{sel}))", "pods"),
        tag(f"max by ({by}) (time() - timestamp({WAITING}{sel}))", "age"),
        tag(f"sum by ({by}, pod) ({RUNNING}{sel})", "pod_running"),
    ])


def parse_query_result(result: Any) -> dict[DeploymentKey, Signals]:
    """Turn the ``data.result`` of :func:`build_query` into signals; raise MetricsError on garbage."""
    if not isinstance(result, list):
        raise MetricsError(f"Prometheus answered {type(result).__name__}, expected a vector (list)")
    acc: dict[DeploymentKey, dict[str, Any]] = {}
    dropped: dict[DeploymentKey, list[str]] = {}
    for i, item in enumerate(result):
        try:
            labels, value = item["metric"], item["value"]
            ns, name, signal = labels[NS_LABEL], labels[DEPLOYMENT_LABEL], labels["signal"]
            v = float(value[1])
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise MetricsError(f"Prometheus result item {i} is malformed ({e!r}): {str(item)[:200]}") from e
        if signal == "age" and math.isfinite(v):
            v = max(0.0, v)  # a sample stamped slightly in the future (clock skew) is fresh, not unusable
        why = unusable(v)
        if why is not None:
            where = f"{signal}[{labels['pod']}]" if labels.get("pod") else signal
            dropped.setdefault((ns, name), []).append(f"{where}={why} dropped")
            acc.setdefault((ns, name), {"pod_running": {}})
            continue
        d = acc.setdefault((ns, name), {"pod_running": {}})
        if signal == "pod_running":
            if labels.get("pod"):
                d["pod_running"][labels["pod"]] = v
        elif signal in ("waiting", "running", "kv", "pods", "age"):
            d[signal] = v
    return {
        key: Signals(d.get("waiting"), d.get("running"), d.get("kv"), int(d.get("pods", 0)), d.get("age"),
                     d["pod_running"], dropped=tuple(dropped.get(key, ())))
        for key, d in acc.items()
    }


def _root_cause(exc: Exception) -> str:
    """The OS-level reason of a failed request, not the whole URL-encoded query (it lands in a condition)."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    return errno.group(0) if errno else f"{type(exc).__name__}: {text[:200]}"


class PrometheusSource:
    """Production source: one instant query per cycle against Prometheus' HTTP API.

    Uses prometheus-api-client's ``custom_query``. ``PrometheusConnect.check_prometheus_connection``
    (which fetches ``/``) is never called: Debian's Prometheus 2.42 has no web UI there.
    Retries (connection errors, 502/503/504) are urllib3's, with a short backoff; each attempt
    is bounded by ``timeout``.
    """

    def __init__(self, url: str, timeout: float = 5.0, retries: int = 2, selector: str | None = None) -> None:
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.query = build_query(selector) if selector else build_query()
        retry = Retry(total=retries, connect=retries, read=retries, backoff_factor=0.2,
                      status_forcelist=(502, 503, 504), allowed_methods=("GET", "POST"),
                      raise_on_status=False)
        try:
            self._prom = PrometheusConnect(url=self.url, disable_ssl=True, retry=retry)
        except Exception as e:  # older clients probe the server in the constructor
            raise MetricsError(f"cannot set up the Prometheus client for {self.url}: {e}") from e

    def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]] | None = None,
              ) -> dict[DeploymentKey, Signals]:
        """Run the batched query; ``pod_urls`` is ignored."""
        return parse_query_result(self.run(self.query))

    def run(self, expr: str) -> Any:
        """``data.result`` of one instant query (also `modelfleet status`'s); raises :class:`MetricsError`."""
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            return self._prom.custom_query(expr, timeout=self.timeout)
        except requests.Timeout as e:
            raise MetricsError(f"Prometheus at {self.url} timed out after {self.timeout}s") from e
        except requests.JSONDecodeError as e:
            raise MetricsError(f"Prometheus at {self.url} answered garbage (not JSON): {e}") from e
        except requests.RequestException as e:
            if "timed out" in str(e):  # a read timeout after retries arrives as a ConnectionError
                raise MetricsError(f"Prometheus at {self.url} timed out after {self.timeout}s") from e
            raise MetricsError(f"Prometheus at {self.url} unreachable: {_root_cause(e)}") from e
        except PrometheusApiClientException as e:
            raise MetricsError(f"Prometheus at {self.url} refused the query: {str(e)[:300]}") from e
        except (ValueError, KeyError, TypeError) as e:  # body not JSON, or JSON without data.result
            raise MetricsError(f"Prometheus at {self.url} answered garbage: {type(e).__name__}: {e}") from e


def read_text(url: str, timeout: float) -> str:
    """GET a /metrics endpoint (a pod's, or the operator's for `modelfleet status`); raises OSError."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode("utf-8", "replace"))


@dataclass(frozen=True)
class PodSample:
    """What one pod's /metrics said."""

    waiting: float | None
    running: float | None
    kv_new: float | None
    kv_old: float | None
    dropped: tuple[str, ...] = ()


def parse_exposition(text: str) -> PodSample:
    """Parse vLLM's /metrics text (all ``model_name``/``engine`` series of a gauge are summed;
    KV usage is averaged over engines)."""
    sums: dict[str, list[float]] = {}
    dropped: list[str] = []
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name in (WAITING, RUNNING, KV_USAGE, KV_USAGE_OLD):
                for s in fam.samples:
                    if s.name != fam.name:
                        continue
                    why = unusable(float(s.value))
                    if why is None:
                        sums.setdefault(fam.name, []).append(float(s.value))
                    else:
                        dropped.append(f"{fam.name}={why} dropped")
    except ValueError as e:
        raise MetricsError(f"unparseable metrics text: {e}") from e

    def total(n: str) -> float | None:
        return sum(sums[n]) if n in sums else None

    def mean(n: str) -> float | None:
        return sum(sums[n]) / len(sums[n]) if sums.get(n) else None

    return PodSample(total(WAITING), total(RUNNING), mean(KV_USAGE), mean(KV_USAGE_OLD), tuple(dropped))


def combine(samples: Iterable[PodSample], pod_running: Mapping[str, float] | None = None,
            errors: Sequence[str] = ()) -> Signals:
    """One deployment's signals from its pods' samples; KV falls back to the old name per deployment."""
    samples = list(samples)
    dropped = tuple(d for s in samples for d in s.dropped)
    got = [s for s in samples if s.waiting is not None]
    if not got:
        return Signals(errors=tuple(errors), dropped=dropped)
    kv_new = [s.kv_new for s in got if s.kv_new is not None]
    kv_old = [s.kv_old for s in got if s.kv_old is not None]
    kv = kv_new or kv_old
    running = [s.running for s in got if s.running is not None]
    return Signals(
        waiting=sum(s.waiting or 0.0 for s in got),
        running=sum(running) if running else None,
        kv_cache_usage=sum(kv) / len(kv) if kv else None,
        pods=len(got), age_seconds=0.0, pod_running=dict(pod_running or {}), errors=tuple(errors), dropped=dropped,
    )


class ScrapeSource:
    """Fallback for clusters without Prometheus: GET each ready pod's ``/metrics`` in a thread pool.

    ``pod_urls`` maps a deployment to ``{pod name: url}`` of its ready pods
    (``http://<podIP>:8000/metrics``); per-pod running counts are keyed by pod name.
    A pod that fails is left out (and named in ``errors``); the source never raises for one pod.
    """

    def __init__(self, timeout: float = 2.0, workers: int = 16) -> None:
        self.timeout = timeout
        self.workers = workers

    def _scrape(self, url: str) -> PodSample | str:
        try:
            return parse_exposition(read_text(url, self.timeout))
        except (OSError, MetricsError, ValueError) as e:
            return f"{url}: {e}"

    def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]] | None = None,
              ) -> dict[DeploymentKey, Signals]:
        """Scrape every URL concurrently and group the samples by deployment."""
        jobs = [(key, pod, url) for key, urls in (pod_urls or {}).items() for pod, url in urls.items()]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(jobs) or 1))) as pool:
            results = list(pool.map(lambda job: self._scrape(job[2]), jobs))
        grouped: dict[DeploymentKey, tuple[list[PodSample], dict[str, float], list[str]]] = {
            key: ([], {}, []) for key in (pod_urls or {})}
        for (key, pod, _url), res in zip(jobs, results, strict=True):
            samples, per_pod, errors = grouped[key]
            if isinstance(res, str):
                errors.append(f"{pod} {res}")
            else:
                samples.append(res)
                if res.running is not None:
                    per_pod[pod] = res.running
        return {key: combine(s, p, e) for key, (s, p, e) in grouped.items()}
