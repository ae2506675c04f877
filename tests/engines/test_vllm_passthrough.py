"""engine.args checked against a release's options as vLLM's parser reads them (pure, table-driven).

Which options exist in which release is from vLLM itself (`vllm serve --help=all` of each); the
parser test (test_vllm_parser.py) has vLLM refuse the same lines.
"""

from __future__ import annotations

import pytest

from modelfleet.engines import vllm
from modelfleet.engines.vllm.passthrough import arg_problems


@pytest.mark.parametrize(
    ("version", "args", "problems"),
    [
        ("0.32.0", ["--enforce-eager", "--seed", "7", "--max-num-batched-tokens=8192"], []),
        ("0.32.0", ["--lora-modules", "a=/l/a", "b=/l/b", "--enforce-eager"], []),  # nargs="+"
        ("0.32.0", ["--max_num_batched_tokens=8192"], []),  # `_` is `-`
        ("0.32.0", ["--max-num-batched=8192"], []),  # an unambiguous prefix
        ("0.32.0", ["--disable-log-requests"], [(0, "no such option")]),  # removed in 0.12
        ("0.11.0", ["--disable-log-requests"], []),
        ("0.32.0", ["--swap-space", "4", "--enforce-eager"], [(0, "no such option")]),
        ("0.11.0", ["--swap-space", "4", "--enforce-eager"], []),
        ("0.32.0", ["--max"], [(0, "ambiguous")]),
        ("0.32.0", ["--max-model", "4096"], [(0, "spec.engine.maxModelLen")]),  # a prefix of an owned option
        ("0.32.0", ["--port=9000"], [(0, "the fixed port 8000")]),
        ("0.32.0", ["--seed"], [(0, "needs a value")]),
        ("0.32.0", ["4096"], [(0, "not an option")]),
        ("0.32.0", ["--enforce-eager", "7"], [(1, "not an option")]),  # a switch takes no value
    ],
)
def test_arg_problems(version: str, args: list[str], problems: list[tuple[int, str]]) -> None:
    found = arg_problems(vllm.flag_table(version), args)
    assert [(p.field, p.version) for p in found] == [(f"engine.args[{i}]", version) for i, _ in problems]
    for problem, (_, words) in zip(found, problems, strict=True):
        assert words in str(problem), str(problem)
