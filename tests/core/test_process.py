"""The operator process's own setup (process.py)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from modelfleet.process import fewer_malloc_arenas


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt's M_ARENA_MAX is glibc's")
def test_glibc_accepts_the_arena_cap() -> None:
    # mallopt returns 1 on success and 0 for a parameter or value it refuses (man 3 mallopt).
    assert fewer_malloc_arenas() is True


def test_without_glibc_it_is_a_no_op() -> None:
    # A libc without mallopt (musl has none) must not stop the operator from starting.
    code = ("import ctypes; ctypes.CDLL = lambda *a, **k: (_ for _ in ()).throw(OSError('no libc.so.6'));"
            "from modelfleet.process import fewer_malloc_arenas; print(fewer_malloc_arenas())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
