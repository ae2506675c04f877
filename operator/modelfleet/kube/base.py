"""The shared plumbing of modelfleet.kube: configuration, timeouts, rate limit, counting, the write gate."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

from modelfleet.kubeerror import KubeError as KubeError
from modelfleet.kubeerror import from_api_exception as _wrap
from modelfleet.kubeerror import unreachable as _unreachable
from modelfleet.ratelimit import TokenBucket

log = logging.getLogger(__name__)

REQUESTS = PromCounter(
    "modelfleet_kube_requests", "Requests the operator sent to the Kubernetes API", ["verb", "resource"]
)
REQUEST_SECONDS = Histogram(
    "modelfleet_kube_request_duration_seconds", "Duration of one Kubernetes API call, failed ones included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
)


# urllib3's retry for a refused or reset connection: once, after a short jittered pause.
_RETRY = urllib3.Retry(total=1, connect=1, read=0, status=0, backoff_factor=0.3, backoff_jitter=0.3, backoff_max=2)


def load_config() -> None:
    """In-cluster config when running in a pod, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


class KubeClient:
    """The connection, its timeouts, rate limit and write gate, and the request counters every call shares."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        timeout: tuple[float, float] = (5, 20),
        retry: bool = True,
        limiter: TokenBucket | None = None,
        page_size: int = 500,
        event_workers: int = 0,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        if api_client is None:
            configuration = client.Configuration.get_default_copy()
            configuration.retries = _RETRY if retry else False
            # Room for every concurrent reconcile, the watches, the Event posters, the autoscaler and the
            # Lease: urllib3's default of 10 pooled connections would churn ("Connection pool is full").
            configuration.connection_pool_maxsize = 48
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.timeout = timeout
        self.limiter = limiter or TokenBucket(0, 1)  # default: unlimited (CLI tools, tests)
        self.page_size = page_size
        # event_workers > 0: Events are posted by a small pool in the background (the operator);
        # 0: at once, in the caller's thread (tools, tests).
        self._events = ThreadPoolExecutor(event_workers, thread_name_prefix="events") if event_workers else None
        # Leader election's gate (leader.py): while it says no, every write is refused before it is sent.
        self.may_write = may_write
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.storage = client.StorageV1Api(self.api_client)

    def _count(self, verb: str, resource: str) -> None:
        REQUESTS.labels(verb, resource).inc()

    def _writing(self, verb: str, resource: str, what: str) -> None:
        """Count a write, or refuse it (retryable) while this process is not sure it leads."""
        if self.may_write is not None and not self.may_write():
            raise KubeError(f"{what}: not sent: this operator is not sure it still leads (Lease not renewed)",
                            None, True)
        self._count(verb, resource)

    def _call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        missing_ok: bool = False,
        limited: bool = True,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call with our timeouts; every failure becomes a KubeError (None for a 404 when missing_ok).

        Every call but the Lease's waits for the client-side rate limit: a renewal stuck behind a
        rollout's queue would cost the leadership.
        """
        if limited:
            self.limiter.take()
        try:
            with REQUEST_SECONDS.time():  # failed calls too: a timeout is the latency that matters
                return fn(*args, _request_timeout=timeout or self.timeout, **kwargs)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise _wrap(exc, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unreachable(exc, what) from exc

    def _plain(self, obj: Any) -> Any:
        return None if obj is None else self.api_client.sanitize_for_serialization(obj)

