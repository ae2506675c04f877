"""state.json: what runs where. Written by `up`, read by `status`, `down`, `env` and the pytest fixtures.

Keys: version, kubeconfig, server, state_dir, nodes, gpus_per_node, ports{name: port},
pids{name: pid}, binaries{name: path}, logs{name: path}, prometheus_url (or null), targets_dir,
prometheus_job, started_at (unix time), stopped [names] (components `e2e/cluster stop` stopped;
the pid of each stays recorded, replaced when it starts again).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def save(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
