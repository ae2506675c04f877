"""What vLLM and its image need for a shared model cache: the download command and the replicas' environment.

The download runs in the same vllm/vllm-openai image as the server, with the `hf` CLI of the
`huggingface_hub` it ships (2.4.0 in vLLM 0.32.0; the older `huggingface-cli` entry point is gone).
That CLI already resumes an interrupted file from its `.incomplete` blob (HTTP Range) and retries
HTTP 408/429 itself (huggingface_hub.utils._http: up to 5 retries, 1-8 s exponential back-off,
honouring Retry-After and the RateLimit headers); the Job's backoffLimit adds pod-level retries on
top, each resuming from the volume.

Replicas run with HF_HUB_OFFLINE=1 and HF_HUB_CACHE on the read-only volume: vLLM then replaces
the repo id by the snapshot path it finds there (vllm/engine/arg_utils.py, get_model_path) and
never contacts the Hub. `--download-dir` is deliberately not used: vLLM creates a lock file in the
download dir (weight_utils.get_lock), which fails on a read-only mount.
"""

from __future__ import annotations

from typing import Any

# Where the cache volume is mounted, in the download pod and (read-only) in the replicas.
CACHE_MOUNT = "/model-cache"
HUB_DIR = f"{CACHE_MOUNT}/hub"
DEFAULT_REVISION = "main"
# The download script: positional arguments keep the repo id and revision out of the shell's
# parsing. On success the byte count goes to the termination message, which the operator reads
# into status.cache.bytesDone; on failure the kubelet falls back to the log's last lines.
DOWNLOAD_SCRIPT = (
    'set -eu; hf download "$1" --revision "$2" --cache-dir "$3" --max-workers 8; '
    'printf "bytes=%s\\n" "$(du -sb "$3" | cut -f1)" > /dev/termination-log'
)
# Seconds huggingface_hub waits for a chunk (default 10): a slow mirror is not a dead one.
DOWNLOAD_TIMEOUT_SECONDS = 60


def download_command(repo: str, revision: str) -> tuple[list[str], list[str]]:
    """(command, args) of the download container for one repo and revision."""
    return ["sh", "-c", DOWNLOAD_SCRIPT], ["download", repo, revision, HUB_DIR]


def download_env(token_ref: tuple[str, str] | None, scratch: str) -> list[dict[str, Any]]:
    """The download container's environment: HOME and the client's own state in `scratch`, only the hub
    cache on the volume, the token from its Secret."""
    out: list[dict[str, Any]] = [
        {"name": "HOME", "value": scratch},
        {"name": "HF_HOME", "value": f"{scratch}/hf"},
        {"name": "HF_HUB_CACHE", "value": HUB_DIR},
        {"name": "HF_HUB_DOWNLOAD_TIMEOUT", "value": str(DOWNLOAD_TIMEOUT_SECONDS)},
        {"name": "HF_HUB_ETAG_TIMEOUT", "value": str(DOWNLOAD_TIMEOUT_SECONDS)},
        {"name": "HF_HUB_DISABLE_PROGRESS_BARS", "value": "1"},  # the log would be megabytes of \r
        {"name": "HF_HUB_DISABLE_TELEMETRY", "value": "1"},
    ]
    if token_ref is not None:
        name, key = token_ref
        out.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
    return out


def replica_env() -> list[dict[str, str]]:
    """Environment of a replica serving from the cache: offline, the hub cache on the read-only volume."""
    return [{"name": "HF_HUB_OFFLINE", "value": "1"}, {"name": "HF_HUB_CACHE", "value": HUB_DIR}]


def parse_termination(message: str) -> int | None:
    """bytes=N from the download's termination message, or None."""
    for line in message.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "bytes" and value.strip().isdigit():
            return int(value.strip())
    return None
