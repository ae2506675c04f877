"""Assembling a paginated LIST: pages joined in order, the snapshot's resourceVersion, restart on 410."""

from __future__ import annotations

import pytest

from modelfleet.paging import Expired, Page, collect


def item(i: int) -> dict[str, object]:
    return {"metadata": {"name": f"p{i}"}}


def pages_of(items: list[dict[str, object]], size: int, version: str = "42") -> dict[str, Page]:
    """Continue token -> page, as the API server would answer a LIST with limit=size."""
    out: dict[str, Page] = {}
    for start in range(0, max(len(items), 1), size):
        token = "" if start == 0 else f"c{start}"
        nxt = f"c{start + size}" if start + size < len(items) else ""
        out[token] = Page(items[start:start + size], version, nxt)
    return out


@pytest.mark.parametrize(("count", "size", "requests"), [(0, 500, 1), (7, 3, 3), (6, 3, 2), (1000, 500, 2)])
def test_pages_join_in_order(count: int, size: int, requests: int) -> None:
    items = [item(i) for i in range(count)]
    table = pages_of(items, size)
    asked: list[str] = []

    def fetch(token: str) -> Page:
        asked.append(token)
        return table[token]

    got, version = collect(fetch)
    assert got == items and version == "42"
    assert len(asked) == requests  # ceil(count / size), at least one


def test_an_expired_continue_token_restarts_the_list_from_the_first_page() -> None:
    first = pages_of([item(i) for i in range(4)], 2, version="7")
    second = pages_of([item(i) for i in range(5)], 2, version="9")
    calls: list[str] = []

    def fetch(token: str) -> Page:
        calls.append(token)
        if len(calls) == 2:  # the second page of the first attempt: token too old
            raise Expired("410")
        return (first if len(calls) < 2 else second)[token]

    got, version = collect(fetch)
    assert [i["metadata"]["name"] for i in got] == ["p0", "p1", "p2", "p3", "p4"]  # nothing twice
    assert version == "9" and calls == ["", "c2", "", "c2", "c4"]


def test_gives_up_after_the_attempts() -> None:
    def fetch(token: str) -> Page:
        raise Expired("410")

    with pytest.raises(Expired):
        collect(fetch, attempts=2)
