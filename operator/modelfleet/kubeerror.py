"""KubeError: what a failed Kubernetes API call becomes (kube/ raises it; callers read status and retryable).

Pure mapping of the client's exceptions, no API calls: kube/ stays the only package that talks to the API.
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


class KubeError(Exception):
    """An API call failed; `retryable` says whether trying again later can help."""

    def __init__(
        self,
        message: str,
        status: int | None,
        retryable: bool,
        api_message: str = "",
        fields: tuple[str, ...] = (),
        causes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.api_message = api_message or message  # the API server's own words (Status.message)
        self.fields = fields  # the fields it named (Status.details.causes[].field)
        self.causes = causes  # the reasons it gave (Status.details.causes[].reason)

    @property
    def namespace_terminating(self) -> bool:
        """Refused because the namespace is being deleted: the object is going with it, nothing to report."""
        return "NamespaceTerminating" in self.causes

    @property
    def refused(self) -> bool:
        """The API server (or an admission plugin) refused the object itself: retrying the same cannot help."""
        return self.status in (400, 403, 422)


def from_api_exception(exc: ApiException, what: str) -> KubeError:
    """The API server's refusal as a KubeError with its own words, the fields and reasons it named."""
    status = int(exc.status or 0)
    reason = exc.reason or ""
    raw = exc.body if isinstance(exc.body, str) else (exc.body or b"").decode("utf-8", "replace")
    api_message = ""
    fields: tuple[str, ...] = ()
    cause_reasons: tuple[str, ...] = ()
    try:
        doc = json.loads(raw)
        api_message = str(doc.get("message") or "")
        causes = (doc.get("details") or {}).get("causes") or []
        fields = tuple(str(c["field"]) for c in causes if c.get("field"))
        cause_reasons = tuple(str(c["reason"]) for c in causes if c.get("reason"))
    except (ValueError, AttributeError):
        pass
    retryable = status in (0, 409, 429) or status >= 500
    detail = api_message or raw[:500]
    return KubeError(
        f"{what}: {status} {reason} {detail}".strip(), status, retryable, api_message, fields, cause_reasons
    )


def unreachable(exc: Exception, what: str) -> KubeError:
    """A call that got no HTTP answer at all (timeout, refused, reset): retryable, status 0."""
    return KubeError(f"{what}: no answer from the API server ({type(exc).__name__}: {exc})"[:600], 0, True)
