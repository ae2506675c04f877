"""engine.args against vLLM 0.32.0's flag table, read as vLLM's parser reads it (table-driven).

Expected verdicts are written by hand from `vllm serve --help` of 0.32.0: which options exist,
which take values, and which destinations a spec field owns.
"""

from __future__ import annotations

import pytest

from modelfleet import api, engines
from modelfleet.engines import vllm
from modelfleet.engines.vllm import argcheck

TABLE = vllm.flag_table("0.32.0")
OWNED = dict(vllm.OWNED_DESTS)


@pytest.mark.parametrize(
    ("args", "refused"),
    [
        # (args, [(index, text the message must contain), ...]); [] = accepted
        (["--enable-chunked-prefill"], []),
        (["--max-num-batched-tokens", "8192", "--enforce-eager"], []),
        (["--max_num_batched_tokens=8192"], []),
        (["--seed", "-1"], []),  # a negative number is a value, not an option
        (["--no-enforce-eager"], []),
        (["--tensor_parallel_size=8"], [(0, "spec.gpu.count")]),
        (["--api_key=abc"], [(0, "spec.apiKeySecretRef")]),
        (["--tensor-par", "4"], [(0, "abbreviates --tensor-parallel-size")]),
        (["-tp", "2"], [(0, "spec.gpu.count")]),
        (["-qawq"], [(0, "spec.quantization")]),
        (["--no-enable-prefix"], [(0, "spec.engine.enablePrefixCaching")]),
        (["--api-key", "a", "b", "--enforce-eager"], [(0, "spec.apiKeySecretRef")]),  # nargs=+ values eaten
        (["--enable-chunk"], [(0, "write the option in full")]),  # an unambiguous prefix of a free option
        (["--compilation-config.level=3"], [(0, "not an option of vLLM 0.32.0")]),  # dotted JSON form
        (["--no-such-flag"], [(0, "not an option")]),
        (["--config", "x.yaml"], [(0, "not allowed")]),
        (["--hf-token=x"], [(0, "model.tokenSecretRef")]),
        (["--download-dir", "/"], [(0, "cache volume")]),
        (["--seed"], [(0, "expects a value at the end")]),
        (["--seed", "--enforce-eager"], [(0, "expects a value, but --enforce-eager follows")]),
        (["--seed", "seven"], [(0, "takes a number")]),
        (["--enforce-eager=1"], [(0, "switch")]),
        (["stray"], [(0, "a value without an option")]),
        (["--enforce-eager", "stray"], [(1, "a value without an option")]),
        (["--"], [(0, "ends option parsing")]),
        (["--kv-cache-dtype=fp8"], [(0, "spec.engine.kvCacheDtype")]),
    ],
)
def test_check(args: list[str], refused: list[tuple[int, str]]) -> None:
    problems = argcheck.check(args, TABLE, OWNED)
    got = [(p.index, str(p)) for p in problems]
    assert len(got) == len(refused), got
    for (index, text), (got_index, message) in zip(refused, got, strict=True):
        assert got_index == index and text in message, (got_index, message)
        assert message.startswith(f"spec.engine.args[{index}]: "), message


def test_messages_never_echo_values() -> None:
    problems = argcheck.check(["--api-key", "hunter2", "hunter3", "--seed", "s3cr3t", "lost-s3cr3t"], TABLE, OWNED)
    assert problems and not any("hunter" in str(p) or "s3cr3t" in str(p) for p in problems), problems


def test_spec_problems_hold_the_rollout_naming_the_item() -> None:
    llm = api.LLMDeployment.model_validate({
        "metadata": {"name": "m"},
        "spec": {"model": {"uri": "hf://a/b"},
                 "engine": {"version": "0.32.0", "args": ["--enforce-eager", "--enable-chunk"]}},
    })
    # The CRD and pydantic let a prefix of a free option through; the release's table does not.
    (problem,) = engines.spec_problems(llm.spec)
    assert str(problem).startswith("spec.engine.args[1]: --enable-chunk (vLLM 0.32.0): "), problem
    assert "write the option in full" in str(problem), problem


@pytest.mark.parametrize(
    ("version", "args", "words"),
    [
        # Options that exist in one release and not the other (`vllm serve --help=all` of each).
        ("0.11.0", ["--disable-log-requests"], None),
        ("0.32.0", ["--disable-log-requests"], "not an option of vLLM 0.32.0"),  # removed in 0.12
        ("0.11.0", ["--swap-space", "4", "--enforce-eager"], None),
        ("0.32.0", ["--swap-space", "4", "--enforce-eager"], "not an option of vLLM 0.32.0"),
        ("0.32.0", ["--lora-modules", "a=/l/a", "b=/l/b", "--enforce-eager"], None),  # nargs="+"
        ("0.32.0", ["--port=9000"], "the fixed port 8000"),
    ],
)
def test_check_follows_the_release(version: str, args: list[str], words: str | None) -> None:
    problems = argcheck.check(args, vllm.flag_table(version), OWNED)
    if words is None:
        assert problems == [], problems
    else:
        assert len(problems) == 1 and words in str(problems[0]), problems
