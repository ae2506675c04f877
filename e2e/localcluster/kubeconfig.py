"""Kubeconfig files: one with embedded credentials for people and clients, one per component."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from .pki import Pki

NAME = "modelfleet-local"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write(path: Path, server: str, pki: Pki, user: str, *, embed: bool) -> Path:
    """Write a kubeconfig for client certificate `user` (a pki.CLIENTS name).

    JSON is valid YAML, so kubectl, helm, kopf and the Python client all read it.
    embed=True inlines the certificates (the file stands alone: for people, tests, kopf and helm).
    """
    if embed:
        cluster = {"server": server, "certificate-authority-data": _b64(pki.ca_crt)}
        creds = {"client-certificate-data": _b64(pki.crt(user)), "client-key-data": _b64(pki.key(user))}
    else:
        cluster = {"server": server, "certificate-authority": str(pki.ca_crt)}
        creds = {"client-certificate": str(pki.crt(user)), "client-key": str(pki.key(user))}
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": cluster}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": NAME, "context": {"cluster": NAME, "user": user, "namespace": "default"}}],
        "current-context": NAME,
        "preferences": {},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    path.chmod(0o600)
    return path
