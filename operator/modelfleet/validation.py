"""Syntax of the strings an LLMDeployment hands to the vLLM command line and environment.

Each rule exists twice, from the same text: a CEL rule in the CRD (what `kubectl apply`
refuses) and a Python check in api.py (what `modelfleet render` refuses). The regular
expressions use only what both RE2 (CEL's `matches`) and Python's `re` read the same way, and
no backslashes (they would need escaping twice inside CEL string literals).
"""

from __future__ import annotations

import re

from modelfleet.engines.vllm.env import ENV_NAME_PATTERN, owner_of

MAX_URI_LENGTH = 1024
# huggingface_hub's validate_repo_id: `name` or `namespace/name`, letters, digits, `-`, `_`, `.`;
# `-` and `.` may not start or end a part; `--` and `..` are forbidden; at most 96 characters
# for the name; no `.git` suffix. Its \w also admits non-ASCII letters: we keep to ASCII, and
# we require the namespace (the bare legacy names now redirect to an organisation).
_HF_PART = "[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_HF_NAME = "[A-Za-z0-9_]([A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
# A path segment that reaches `vllm serve` as part of the positional model argument: no leading
# `-` (it would read as a flag), no whitespace or control characters, no `.`/`..` traversal.
_SEGMENT = "[A-Za-z0-9_@+][A-Za-z0-9_.@+=-]*"
_PATH = f"{_SEGMENT}(/{_SEGMENT})*"
_DNS_SUBDOMAIN = "[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?"
_S3_BUCKET = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_GS_BUCKET = "[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]"

URI_SCHEMES: dict[str, str] = {
    "hf": f"^hf://{_HF_PART}/{_HF_NAME}(/{_PATH})?$",
    "pvc": f"^pvc://{_DNS_SUBDOMAIN}(/{_PATH})?$",
    "s3": f"^s3://{_S3_BUCKET}(/{_PATH})?$",
    "gs": f"^gs://{_GS_BUCKET}(/{_PATH})?$",
    "file": f"^file:///{_PATH}$",
}
URI_HELP = {
    "hf": "hf://<namespace>/<name>[/<file>]: letters, digits, '-', '_', '.', not starting or ending with '-' or '.', "
    "no '--' or '..', name at most 96 characters, no '.git' suffix (Hugging Face repo id rules)",
    "pvc": "pvc://<claim>/<path>: a PersistentVolumeClaim name, then path segments of letters, digits, "
    "'_', '.', '@', '+', '=', '-' that do not start with '-' or '.'",
    "s3": "s3://<bucket>/<path>: a 3-63 character bucket name, then path segments that do not start with '-' or '.'",
    "gs": "gs://<bucket>/<path>: a bucket name, then path segments that do not start with '-' or '.'",
    "file": "file:///<path>: an absolute path of segments that do not start with '-' or '.'",
}
URI_SCHEME_MESSAGE = "model.uri must start with hf://, pvc://, s3://, gs:// or file:///"
CREDENTIAL_SCHEMES = ("s3", "gs")

# Control characters never belong in an environment value (NUL cannot even reach a process). Written
# as regex escapes: YAML parsers refuse raw control characters in the generated CRD.
ENV_VALUE_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
MAX_ENV_VALUE_LENGTH = 32768
MAX_ENV_ENTRIES = 64


def uri_problem(uri: str) -> str | None:
    """Why a model URI is refused, or None when it is fine."""
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in URI_SCHEMES:
        return URI_SCHEME_MESSAGE
    if not re.fullmatch(URI_SCHEMES[scheme][1:-1], uri):
        return f"model.uri {uri!r} is not a valid {scheme}:// URI; expected {URI_HELP[scheme]}"
    repo = uri.split("/")[2:4]
    if scheme == "hf" and ("--" in "/".join(repo) or ".." in "/".join(repo) or repo[1].endswith(".git")):
        return f"model.uri {uri!r} is not a valid {scheme}:// URI; expected {URI_HELP[scheme]}"
    return None


def uri_cel_rules() -> list[dict[str, str]]:
    """The CRD's rules on model.uri (one per scheme, so the message says what is expected)."""
    rules = [
        {
            "rule": "self.startsWith('hf://') || self.startsWith('pvc://') || self.startsWith('s3://') "
            "|| self.startsWith('gs://') || self.startsWith('file:///')",
            "message": URI_SCHEME_MESSAGE,
        }
    ]
    for scheme, pattern in URI_SCHEMES.items():
        prefix = f"{scheme}://"
        extra = ""
        if scheme == "hf":
            parts = ("self.split('/')[2]", "self.split('/')[3]")
            extra = "".join(f" && !{p}.contains('--') && !{p}.contains('..')" for p in parts)
            extra += f" && !{parts[1]}.endsWith('.git')"
        rules.append({
            "rule": f"!self.startsWith('{prefix}') || (self.matches('{pattern}'){extra})",
            "message": f"model.uri: expected {URI_HELP[scheme]}",
        })
    return rules


def env_problem(name: str, value: str) -> str | None:
    """Why one engine.env entry is refused, or None."""
    if not re.fullmatch(ENV_NAME_PATTERN, name):
        return f"{name!r} is not a valid environment variable name (letters, digits, '_', '-', '.')"
    owner = owner_of(name)
    if owner is not None:
        return f"{name} is set by modelfleet; use {owner} instead"
    if len(value) > MAX_ENV_VALUE_LENGTH:
        return f"the value of {name} is longer than {MAX_ENV_VALUE_LENGTH} characters"
    if not re.fullmatch(ENV_VALUE_PATTERN, value):
        return f"the value of {name} contains control characters"
    return None


ARG_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def args_cel_rules(owned_flags: list[str]) -> list[dict[str, str]]:
    """CEL on one engine.args item: the common spellings of an owned flag, as vLLM's parser reads them.

    `_` and `-` are the same inside a long flag and `--flag=value` is the flag, so both are
    normalised before matching; a long prefix of an owned flag is refused too (argparse accepts
    unambiguous prefixes). The complete check against the release's flag table runs at reconcile
    and in `modelfleet render`.
    """
    flag = "self.split('=')[0].replace('_', '-')"
    owned = "[" + ", ".join(f"'{f}'" for f in owned_flags) + "]"
    long_owned = "[" + ", ".join(f"'{f}'" for f in owned_flags if f.startswith("--")) + "]"
    return [
        {
            "rule": "self != '--'",
            "message": "engine.args: '--' ends option parsing and is not allowed",
        },
        {
            "rule": f"!({flag} in {owned})",
            "messageExpression": f"'engine.args: ' + {flag} + ' is set by modelfleet from the spec (model.uri, "
            "model.servedName, gpu.count, quantization, engine fields, the port, apiKeySecretRef); "
            "set that field instead'",
        },
        {
            "rule": f"!self.startsWith('--') || !{long_owned}.exists(f, f.startsWith({flag}))",
            "messageExpression": f"'engine.args: ' + {flag} + ' is an abbreviation of a flag modelfleet sets ('"
            f" + {long_owned}.filter(f, f.startsWith({flag}))[0] + '); set the spec field for it instead'",
        },
    ]


def normalize_flag(arg: str) -> str:
    """The flag part of an argument as vLLM's parser reads it: value cut at `=`, `_` -> `-`."""
    return arg.split("=", 1)[0].replace("_", "-")


def arg_problem(arg: str, owned_flags: dict[str, str]) -> str | None:
    """Why one engine.args item is refused by itself (the twin of `args_cel_rules`), or None."""
    if arg == "--":
        return "'--' ends option parsing and is not allowed"
    if not re.fullmatch(ARG_PATTERN, arg):
        return "contains control characters"
    flag = normalize_flag(arg)
    if flag in owned_flags:
        return f"{flag} is set by modelfleet from spec.{owned_flags[flag]}; set that field instead"
    if arg.startswith("--"):
        for owned, field in owned_flags.items():
            if owned.startswith("--") and owned.startswith(flag):
                return f"{flag} abbreviates {owned}, set by modelfleet from spec.{field}; set that field instead"
    return None
