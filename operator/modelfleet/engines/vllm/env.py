"""Environment variables of the vLLM container that the operator owns (refused in engine.env).

One list, read by api.py (pydantic + the CRD's CEL rule) and by the docs. A name is owned when
the operator sets it, or when a user setting it could redirect a credential, switch off the
API key, widen what the server exposes, or move writes out of the size-limited cache volume.
"""

from __future__ import annotations

# Exact names -> why the operator owns them (the message of the refusal says what to use instead).
OWNED_ENV: dict[str, str] = {
    # Secrets: set only from Secret references, never in plain text; an empty value would win
    # over the Secret-backed one and silently switch the API key off.
    "VLLM_API_KEY": "apiKeySecretRef",
    "HF_TOKEN": "model.tokenSecretRef",
    "HUGGING_FACE_HUB_TOKEN": "model.tokenSecretRef",
    "HF_TOKEN_PATH": "model.tokenSecretRef",
    # Where the token is sent and where weights land (the cache volume has a size limit).
    "HF_ENDPOINT": "model.uri (the Hugging Face endpoint receives the token)",
    "HF_HOME": "the cache volume the operator mounts",
    "HUGGINGFACE_HUB_CACHE": "the cache volume the operator mounts",
    "TRANSFORMERS_CACHE": "the cache volume the operator mounts",
    "HF_DATASETS_CACHE": "the cache volume the operator mounts",
    "XDG_CACHE_HOME": "the cache volume the operator mounts",
    "XDG_CONFIG_HOME": "the cache volume the operator mounts",
    "HOME": "the cache volume the operator mounts",
    "USER": "spec.podSecurity",
    "VLLM_CACHE_ROOT": "the cache volume the operator mounts",
    "VLLM_CONFIG_ROOT": "the cache volume the operator mounts",
    "VLLM_ASSETS_CACHE": "the cache volume the operator mounts",
    "TRITON_CACHE_DIR": "the cache volume the operator mounts",
    "TORCHINDUCTOR_CACHE_DIR": "the cache volume the operator mounts",
    # Model source switches: weights from somewhere other than model.uri.
    "VLLM_USE_MODELSCOPE": "model.uri",
    "MODELSCOPE_CACHE": "the cache volume the operator mounts",
    # Ports and addresses the Service, probes and scrapes rely on.
    "VLLM_PORT": "the fixed port 8000",
    "VLLM_HOST_IP": "the pod network",
    # Widen what the server exposes or executes: dev endpoints (collective_rpc, sleep, reset),
    # pickle-based deserialisation, logging of prompts and answers.
    "VLLM_SERVER_DEV_MODE": "nothing: development endpoints are never exposed",
    "VLLM_ALLOW_INSECURE_SERIALIZATION": "nothing: pickle deserialisation stays off",
    "VLLM_DEBUG_LOG_API_SERVER_RESPONSE": "nothing: responses are not logged",
    "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "nothing: adapters cannot be loaded through the API",
    # Object-storage credentials and endpoints: only through model.credentialsSecretRef.
    "GOOGLE_APPLICATION_CREDENTIALS": "model.credentialsSecretRef",
}

# Whole families, by prefix: HF_HUB_* (offline mode, endpoints, cache dirs, telemetry),
# AWS_* (keys, session tokens, endpoint URLs, profile and config files) and GOOGLE_*/GCS_*.
OWNED_ENV_PREFIXES: dict[str, str] = {
    "HF_HUB_": "the operator (Hugging Face Hub client settings decide where the token goes)",
    "AWS_": "model.credentialsSecretRef",
    "GOOGLE_": "model.credentialsSecretRef",
    "GCS_": "model.credentialsSecretRef",
}

# Kubernetes' rule for an environment variable name (C_IDENTIFIER is stricter, but the API
# server accepts this, and so do we).
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


def owner_of(name: str) -> str | None:
    """The field (or reason) that owns an environment variable name, or None when users may set it."""
    if name in OWNED_ENV:
        return OWNED_ENV[name]
    for prefix, owner in OWNED_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return owner
    return None


def cel_owned(variable: str) -> str:
    """A CEL expression true when the string `variable` is an owned name."""
    names = ", ".join(f"'{n}'" for n in sorted(OWNED_ENV))
    prefixes = " || ".join(f"{variable}.startsWith('{p}')" for p in OWNED_ENV_PREFIXES)
    return f"{variable} in [{names}] || {prefixes}"


# Where vLLM, PyTorch, Triton and the Hugging Face client write at run time, all moved under the
# cache volume (size-limited, writable by any UID). The vllm-openai image runs as root with
# HOME=/root; as another UID, HOME is unwritable and getpass.getuser() (torch inductor's default
# cache dir /tmp/torchinductor_<user>) fails without a passwd entry unless USER is set.
def cache_env(root: str) -> list[dict[str, str]]:
    """Environment that points every runtime cache and config dir into `root`."""
    dirs = {
        "HOME": "home",
        "XDG_CACHE_HOME": "xdg-cache",
        "XDG_CONFIG_HOME": "xdg-config",
        "VLLM_CACHE_ROOT": "vllm",
        "VLLM_CONFIG_ROOT": "vllm-config",
        "TRITON_CACHE_DIR": "triton",
        "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
    }
    return [{"name": "USER", "value": "vllm"}] + [{"name": n, "value": f"{root}/{d}"} for n, d in dirs.items()]


# Object-storage credentials, read by the Run:ai model streamer (s3://, and gs:// through Google's
# client library). Keys are read one by one from the referenced Secret (never envFrom: a whole
# Secret imported as env could carry VLLM_API_KEY or HF_ENDPOINT past the checks above).
S3_CREDENTIAL_KEYS: tuple[tuple[str, bool], ...] = (  # (key = variable name, required)
    ("AWS_ACCESS_KEY_ID", True),
    ("AWS_SECRET_ACCESS_KEY", True),
    ("AWS_SESSION_TOKEN", False),
    ("AWS_REGION", False),
    ("AWS_ENDPOINT_URL", False),
)
GCS_CREDENTIALS_KEY = "key.json"
GCS_CREDENTIALS_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"
