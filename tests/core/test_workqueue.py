"""The de-duplicating work queue: one pending entry per key, never two workers on one key."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from modelfleet.workqueue import WorkQueue

DEADLINE = 10.0


def test_keys_added_while_waiting_collapse_into_one_run() -> None:
    gate, seen = threading.Event(), []
    done = threading.Event()

    def process(key: Hashable) -> None:
        if key == "block":
            gate.wait(DEADLINE)
            return
        seen.append(key)
        if key == "last":
            done.set()

    queue = WorkQueue(process, workers=1)
    queue.start()
    queue.add("block")  # occupies the only worker
    for _ in range(50):
        queue.add("a")
    queue.add("last")
    gate.set()
    assert done.wait(DEADLINE)
    assert seen == ["a", "last"], seen  # fifty adds of a waiting key: one run
    queue.stop()


def test_a_key_changed_while_running_runs_once_more_and_never_twice_at_once() -> None:
    started, release, again = threading.Event(), threading.Event(), threading.Event()
    running, overlaps, runs = [0], [0], [0]
    lock = threading.Lock()

    def process(key: Hashable) -> None:
        with lock:
            running[0] += 1
            overlaps[0] = max(overlaps[0], running[0])
            runs[0] += 1
            n = runs[0]
        if n == 1:
            started.set()
            release.wait(DEADLINE)
        with lock:
            running[0] -= 1
        if n == 2:
            again.set()

    queue = WorkQueue(process, workers=4)
    queue.start()
    queue.add("k")
    assert started.wait(DEADLINE)
    queue.add("k")  # while running, three more times: one more run afterwards
    queue.add("k")
    queue.add("k")
    release.set()
    assert again.wait(DEADLINE)
    queue.stop()
    assert runs[0] == 2 and overlaps[0] == 1, (runs, overlaps)


def test_a_failing_key_does_not_kill_the_worker() -> None:
    done = threading.Event()

    def process(key: Hashable) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        done.set()

    queue = WorkQueue(process, workers=1)
    queue.start()
    queue.add("bad")
    queue.add("good")
    assert done.wait(DEADLINE)
    queue.stop()
