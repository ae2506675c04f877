"""Pure drift check: which fields the operator owns on a child differ in the live object.

The operator owns exactly the fields it renders. A child is in line when every rendered field has
the same value in the live object; fields only the live object has (server defaults, status, another
manager's additions) are not ours and are ignored. So a hand edit of an image, an argument, an env
value, a resource limit, the replica count or a label is found even when it keeps the config-hash
annotation, and a server default never causes a re-apply.

Lists of objects that all carry a `name` (containers, env, ports, volumes, mounts) are matched by
name, as server-side apply merges them; other lists (args, command, tolerations) are compared whole.
Atomic maps (a Service's selector, a pod's nodeSelector) are owned whole by whoever wrote them last,
so a key someone added there is drift too, and applying replaces the map. Quantities under
`resources` compare by value (`1000m` is `1`), other scalars by their text (the API
returns `2` where we rendered the integer 2 for an int-or-string field).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils import parse_quantity

# Maps the API server treats as atomic (`+mapType=atomic`): an extra key is a change of the whole map.
ATOMIC_MAPS = ("spec.selector", "spec.template.spec.nodeSelector")


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _same_scalar(want: Any, have: Any, in_resources: bool) -> bool:
    if want == have and type(want) is type(have):
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if str(want) == str(have):
        return True
    if in_resources:
        try:
            return Decimal(parse_quantity(want)) == Decimal(parse_quantity(have))
        except (ValueError, TypeError, InvalidOperation):
            return False
    return False


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)


def differences(want: Any, have: Any, path: str = "", in_resources: bool = False) -> list[str]:
    """Paths (e.g. `spec.template.spec.containers[vllm].image`) where `have` does not carry `want`."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [] if _empty(want) and _empty(have) else [path or "."]
        out: list[str] = []
        if path in ATOMIC_MAPS and set(have) - set(want):
            out.append(path)
        for key, value in want.items():
            sub = f"{path}.{key}" if path else key
            if key not in have:
                if not _empty(value):
                    out.append(sub)
                continue
            out += differences(value, have[key], sub, in_resources or key == "resources")
        return out
    if isinstance(want, list):
        if not isinstance(have, list):
            return [] if _empty(want) and _empty(have) else [path]
        if _named(want) and _named(have):
            live = {i["name"]: i for i in have}
            out = []
            for item in want:
                sub = f"{path}[{item['name']}]"
                out += differences(item, live[item["name"]], sub, in_resources) if item["name"] in live else [sub]
            return out
        if len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += differences(w, h, f"{path}[{i}]", in_resources)
        return out
    return [] if _same_scalar(want, have, in_resources) else [path]
