"""Request traces: read a CSV or JSON Lines file into arrival-ordered requests.

Two formats, told apart by the file's first non-blank line:

* CSV with a header naming ``TIMESTAMP,ContextTokens,GeneratedTokens`` (the Azure LLM inference
  traces' columns; other columns are ignored). ``TIMESTAMP`` is a date-time
  (``2023-11-16 18:15:46.6805900``, ISO 8601 also accepted) or a number of seconds.
* JSON Lines, one object per request: ``{"t": seconds, "prompt_tokens": int, "output_tokens": int}``.

Times are made relative to the first arrival and divided by ``time_scale`` (K > 1 replays the
trace K times faster, at K times the load). A bad line raises :class:`TraceError` with
``FILE:LINE: problem``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

CSV_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


class TraceError(Exception):
    """Bad trace input; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request: arrival (seconds from the trace's start), prompt and output lengths in tokens."""

    t: float
    prompt_tokens: int
    output_tokens: int


def _timestamp(value: str) -> float:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    # .NET-style timestamps carry 7 fractional digits; datetime takes at most 6.
    head, dot, frac = value.partition(".")
    if dot:
        digits = "".join(c for c in frac if c.isdigit())
        rest = frac[len(digits):]
        value = f"{head}.{digits[:6]}{rest}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"TIMESTAMP {value!r} is neither a date-time nor a number of seconds") from None


def _tokens(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def _parse_csv(lines: list[tuple[int, str]], name: str) -> list[tuple[int, float, int, int]]:
    header_no, header_line = lines[0]
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise TraceError(
            f"{name}:{header_no}: CSV header lacks {', '.join(missing)} (expected {','.join(CSV_COLUMNS)})")
    idx = [header.index(c) for c in CSV_COLUMNS]
    out = []
    for n, line in lines[1:]:
        try:
            cells = next(csv.reader([line]))
            if len(cells) < len(header):
                raise ValueError(f"expected {len(header)} fields, got {len(cells)}")
            t = _timestamp(cells[idx[0]])
            out.append((n, t, _tokens(cells[idx[1]], "ContextTokens", 1), _tokens(cells[idx[2]], "GeneratedTokens", 1)))
        except ValueError as e:
            raise TraceError(f"{name}:{n}: {e}") from e
    return out


def _parse_jsonl(lines: list[tuple[int, str]], name: str) -> list[tuple[int, float, int, int]]:
    out = []
    for n, line in lines:
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            for key in ("t", "prompt_tokens", "output_tokens"):
                if key not in obj:
                    raise ValueError(f'missing "{key}"')
            t = obj["t"]
            if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
                raise ValueError(f'"t" must be a number of seconds, got {t!r}')
            out.append((n, float(t), _tokens(obj["prompt_tokens"], '"prompt_tokens"', 1),
                        _tokens(obj["output_tokens"], '"output_tokens"', 1)))
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise TraceError(f"{name}:{n}: {e}") from e
    return out


def parse_trace(text_lines: Iterable[str], name: str, time_scale: float = 1.0) -> list[Request]:
    """Requests in arrival order, times from 0 and divided by ``time_scale``; raises TraceError."""
    if not (math.isfinite(time_scale) and time_scale > 0):
        raise TraceError(f"{name}: time scale must be a positive number, got {time_scale!r}")
    lines = [(n, line.rstrip("\r\n")) for n, line in enumerate(text_lines, 1) if line.strip()]
    if not lines:
        raise TraceError(f"{name}: the trace is empty")
    rows = _parse_jsonl(lines, name) if lines[0][1].lstrip().startswith("{") else _parse_csv(lines, name)
    if not rows:
        raise TraceError(f"{name}: the trace has a header but no requests")
    rows.sort(key=lambda r: (r[1], r[0]))  # logs are not always in order; stable by line
    t0 = rows[0][1]
    return [Request((t - t0) / time_scale, p, o) for _, t, p, o in rows]


def read_trace(path: str, time_scale: float = 1.0) -> list[Request]:
    """Read a trace file (CSV or JSON Lines); raises TraceError naming the file and line."""
    try:
        with Path(path).open(encoding="utf-8") as f:
            return parse_trace(f, path, time_scale)
    except OSError as e:
        raise TraceError(f"{path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise TraceError(f"{path}: not a text file ({e.reason})") from e
