"""Trace reading: both formats, time scaling, and every bad line named by number."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfleet.autoscaler.simulate.trace import Request, TraceError, parse_trace, read_trace

# Hand-made in the shared Azure trace's format (7 fractional digits, as its TIMESTAMP column has).
AZURE_LIKE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:15:46.6805900,374,44
2023-11-16 18:15:50.9951690,396,109
2023-11-16 18:15:48.1805900,91,16
"""


def test_csv_in_the_azure_format_is_relative_to_the_first_arrival_and_sorted() -> None:
    reqs = parse_trace(AZURE_LIKE.splitlines(), "t.csv")
    # 46.68059 -> 0; 48.18059 - 46.68059 = 1.5; 50.995169 - 46.68059 = 4.314579
    assert [r.prompt_tokens for r in reqs] == [374, 91, 396]
    assert reqs[0] == Request(0.0, 374, 44)
    assert reqs[1].t == pytest.approx(1.5)
    assert reqs[2].t == pytest.approx(4.314579)


def test_jsonl_and_time_scale() -> None:
    lines = ['{"t": 10, "prompt_tokens": 5, "output_tokens": 7}', "",
             '{"t": 14, "prompt_tokens": 1, "output_tokens": 2}']
    reqs = parse_trace(lines, "t.jsonl", time_scale=4)
    assert reqs == [Request(0.0, 5, 7), Request(1.0, 1, 2)]  # (14 - 10) / 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n1,2,3\n4,x,3\n",
         "t:3: ContextTokens must be a whole number >= 1, got 'x'"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n1,2,0\n", "t:2: GeneratedTokens must be a whole number >= 1, got 0"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n1,2\n", "t:2: expected 3 fields, got 2"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,2,3\n", "t:2: TIMESTAMP 'yesterday' is neither"),
        ("time,prompt,output\n1,2,3\n", "t:1: CSV header lacks TIMESTAMP, ContextTokens, GeneratedTokens"),
        ('{"t": 1, "prompt_tokens": 2, "output_tokens": 3}\n{"t": 2, "prompt_tokens": 2}\n',
         't:2: missing "output_tokens"'),
        ('{"t": 1, "prompt_tokens": 2, "output_tokens": 3}\n{"t": 2, "prompt_tokens": 2.5, "output_tokens": 3}\n',
         't:2: "prompt_tokens" must be a whole number >= 1, got 2.5'),
        ('{"t": "soon", "prompt_tokens": 2, "output_tokens": 3}\n', 't:1: "t" must be a number of seconds'),
        ('{"t": 1, "prompt_tokens": 2, "output_tokens": 3}\n{broken\n', "t:2: Expecting property name"),
        ("\n\n", "t: the trace is empty"),
        ("TIMESTAMP,ContextTokens,GeneratedTokens\n", "t: the trace has a header but no requests"),
    ],
)
def test_bad_input_names_the_line_and_the_problem(text: str, expected: str) -> None:
    with pytest.raises(TraceError) as err:
        parse_trace(text.splitlines(keepends=True), "t")
    assert str(err.value).startswith(expected), str(err.value)


def test_read_trace_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match=r"nope\.csv: No such file"):
        read_trace(str(tmp_path / "nope.csv"))
    with pytest.raises(TraceError, match="time scale must be a positive number"):
        parse_trace(["TIMESTAMP,ContextTokens,GeneratedTokens", "1,2,3"], "t", time_scale=0)
