"""The local KWOK's configuration: its parallelism, and the pod stages it runs (its three defaults, plus two
for modelfleet's model-cache download pods).

KWOK uses the Pod stages of its config instead of its defaults as soon as the config has any, so
the defaults (kwok v0.7.0, kustomize/stage/pod/fast: pod-ready, pod-complete, pod-delete) are
restated here; the only change to them is that pod-complete leaves download pods (label
`modelfleet.io/cache`) to the two stages below, so that no other pod behaves differently.

- model-cache-download-complete: a download pod that has run for DOWNLOAD_SECONDS succeeds, with the
  termination message the real download writes (`bytes=<N>`; N = DOWNLOADED_BYTES, a stand-in).
- model-cache-download-fail: a download pod whose arguments name FAILING_REPO fails after 1 s like an
  `hf download` that ran out of retries on HTTP 429 (exit 1, the client's last error as the message).

The tests read these constants as the kubelet's side of the story (what the pod reported), never the
operator's.
"""

from __future__ import annotations

import json
from pathlib import Path

CACHE_LABEL = "modelfleet.io/cache"
DOWNLOAD_SECONDS = 4
DOWNLOADED_BYTES = 988_097_824  # Qwen2.5-0.5B-Instruct's model.safetensors on the Hub, as a plausible figure
FAILING_REPO = "modelfleet-e2e/download-fails"
FAILURE_MESSAGE = (
    "huggingface_hub.errors.HfHubHTTPError: 429 Client Error: Too Many Requests for url: "
    f"https://huggingface.co/api/models/{FAILING_REPO}/revision/main"
)

_RUNNING = [
    {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
    {"key": ".status.phase", "operator": "In", "values": ["Running"]},
]
_POD = {"apiGroup": "v1", "kind": "Pod"}

_READY_TEMPLATE = """{{ $now := Now }}
conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Initialized
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: ContainersReady
{{ range .spec.readinessGates }}
- lastTransitionTime: {{ $now | Quote }}
  status: "True"
  type: {{ .conditionType | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  state:
    running:
      startedAt: {{ $now | Quote }}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- image: {{ .image | Quote }}
  name: {{ .name | Quote }}
  ready: true
  restartCount: 0
  {{ if eq .restartPolicy "Always" }}
  started: true
  state:
    running:
      startedAt: {{ $now | Quote }}
  {{ else }}
  state:
    terminated:
      exitCode: 0
      finishedAt: {{ $now | Quote }}
      reason: Completed
      startedAt: {{ $now | Quote }}
  {{ end }}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) \
( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
phase: Running
startTime: {{ $now | Quote }}
"""


_NOT_READY = """conditions:
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: Ready
- lastTransitionTime: {{ $now | Quote }}
  status: "False"
  type: ContainersReady
"""


def _finished(phase: str, exit_code: int, reason: str, message: str | None) -> str:
    """A statusTemplate that ends every container with one exit code (and message: then Ready turns False
    too; without one it is KWOK's own pod-complete template)."""
    extra = f"      message: {json.dumps(message)}\n" if message is not None else ""
    conditions = _NOT_READY if message is not None else ""
    return f"""{{{{ $now := Now }}}}
{conditions}containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {exit_code}
      finishedAt: {{{{ $now | Quote }}}}
      reason: {json.dumps(reason)}
{extra}      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: {phase}
"""


def stages() -> list[dict[str, object]]:
    """Every Pod stage, as KWOK Stage objects."""
    is_download = {"key": f'.metadata.labels["{CACHE_LABEL}"]', "operator": "Exists"}
    not_download = {"key": f'.metadata.labels["{CACHE_LABEL}"]', "operator": "DoesNotExist"}
    fails = {"key": ".spec.containers.[].args.[]", "operator": "In", "values": [FAILING_REPO]}
    succeeds = {**fails, "operator": "NotIn"}
    specs: dict[str, dict[str, object]] = {
        "pod-ready": {
            "selector": {"matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.podIP", "operator": "DoesNotExist"},
            ]},
            "next": {"statusTemplate": _READY_TEMPLATE},
        },
        "pod-complete": {
            "selector": {"matchExpressions": [
                *_RUNNING, {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]},
                not_download,
            ]},
            "next": {"statusTemplate": _finished("Succeeded", 0, "Completed", None)},
        },
        "pod-delete": {
            "selector": {"matchExpressions": [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}]},
            "next": {"finalizers": {"empty": True}, "delete": True},
        },
        "model-cache-download-complete": {
            "selector": {"matchExpressions": [*_RUNNING, is_download, succeeds]},
            "delay": {"durationMilliseconds": DOWNLOAD_SECONDS * 1000},
            "next": {"statusTemplate": _finished("Succeeded", 0, "Completed", f"bytes={DOWNLOADED_BYTES}\n")},
        },
        "model-cache-download-fail": {
            "selector": {"matchExpressions": [*_RUNNING, is_download, fails]},
            "delay": {"durationMilliseconds": 1000},
            "next": {"statusTemplate": _finished("Failed", 1, "Error", FAILURE_MESSAGE)},
        },
    }
    return [
        {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name},
         "spec": {"resourceRef": _POD, **spec}}
        for name, spec in specs.items()
    ]


# KWOK plays pod and node stages and renews node Leases 4 at a time by default (v0.7.0). At 1,000
# nodes and 10,000 pods (bench/fleet) that queue set the pace: 10,000 pods took ~11 minutes to run
# (16 at a time: under 2), and some node Leases lapsed under load. Small clusters are unaffected:
# with little to do, the extra workers idle.
PARALLELISM = 16


def options() -> dict[str, object]:
    """KWOK's own configuration document (how many stages and Lease renewals run at once)."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {"podPlayStageParallelism": PARALLELISM, "nodePlayStageParallelism": PARALLELISM,
                    "nodeLeaseParallelism": PARALLELISM},
    }


def write(path: Path) -> Path:
    """The KWOK config file (JSON documents are YAML), for `kwok --config`: its options, then the stages."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n---\n".join(json.dumps(doc, indent=1) for doc in [options(), *stages()]) + "\n")
    return path
