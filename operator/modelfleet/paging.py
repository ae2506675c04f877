"""Assembling a paginated LIST (`limit` + `continue`) into one consistent snapshot; pure.

A LIST of a large collection in one answer is one huge allocation on both ends; pages of `limit`
items keep memory flat. All pages of one LIST come from the same snapshot (the continue token
pins the first page's resourceVersion); when the token expires (410 Gone) the whole LIST starts over.
A watch answer is read the same way, line by line, never as one body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    """One answer of a paginated LIST."""

    items: list[dict[str, Any]]
    resource_version: str  # the collection's resourceVersion (the same on every page of one LIST)
    continue_token: str  # empty on the last page


class Expired(Exception):
    """The continue token (or the resourceVersion) is too old: the LIST has to start over."""


def collect(fetch: Callable[[str], Page], attempts: int = 3) -> tuple[list[dict[str, Any]], str]:
    """Every item of a LIST fetched page by page (`fetch(continue_token)`), and the snapshot's resourceVersion.

    A page that raises Expired restarts the LIST from the first page, at most `attempts` times.
    """
    for attempt in range(attempts):
        items: list[dict[str, Any]] = []
        token = ""
        try:
            while True:
                page = fetch(token)
                items.extend(page.items)
                token = page.continue_token
                if not token:
                    return items, page.resource_version
        except Expired:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def lines(resp: Any) -> Iterator[bytes]:
    """The lines of a streaming HTTP answer (one JSON watch event per line)."""
    pending = b""
    for chunk in resp.stream(amt=None, decode_content=True):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line
    if pending:
        yield pending
