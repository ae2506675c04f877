"""Hostile LLMDeployments, generated: each is refused naming the field it attacks, or it renders to a
command line that vLLM's own parser reads with exactly the intended value of every owned field.

Flag-looking strings in every string field, unicode and control characters, huge numbers, owned
environment names, and every spelling vLLM's parser accepts for an owned option (exact, `_` form,
`=value`, each unambiguous and ambiguous prefix, short aliases, glued short values, `--no-` forms).
Expected values come from the spec by hand (test_vllm_parser.expected), never from the renderer.
One vLLM subprocess judges every rendered line (vllm_venv.judge).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_vllm_parser import Line, body, misparsed, rendered
from vllm_venv import judge

from modelfleet import api, engines
from modelfleet.engines import vllm
from modelfleet.loading import describe_validation

EXAMPLES = 600
VERSION = vllm.DEFAULT_VERSION


def owned_spellings() -> list[str]:
    """Every way vLLM's parser can be made to set an owned option, from the release's own table."""
    owned = vllm.owned_flags(VERSION)
    out: set[str] = set()
    for flag in owned:
        out.add(flag)
        if flag.startswith("--"):
            out.add("--" + flag[2:].replace("-", "_"))
            out.update(flag[:n] for n in range(4, len(flag)))  # prefixes, unambiguous and not
        else:
            out.add(flag + "4")  # a short option with a glued value
    return sorted(out)


SPELLINGS = owned_spellings()
HOSTILE_TEXT = [
    "--api-key=stolen", "--api_key", "-tp", "--", "-", "--tensor-par", "\n--api-key=x", "a b", "\t", "\x00",
    "\uff0d\uff0dapi-key", "hf://--x/y", "--config=/etc/passwd", "$(id)", "`id`", "../..", "' or '1'='1", "é", "🦙",
    "--served-model-name=other", "-qawq", "--no-enable-prefix", "--hf-token=x",
]
OWNED_ENV = ["VLLM_API_KEY", "HF_TOKEN", "HF_ENDPOINT", "HF_HOME", "HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN",
             "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS", "VLLM_SERVER_DEV_MODE",
             "HOME", "XDG_CACHE_HOME", "TRITON_CACHE_DIR"]
BENIGN_ARGS = ["--enforce-eager", "--seed", "7", "--max-num-batched-tokens=8192", "--disable-log-stats",
               "--block-size", "16", "--trust-remote-code"]

text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=24),
                 st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True))
huge = st.one_of(st.integers(-(10**20), 10**20), st.integers(-2, 70_000))
# Plausible values beside the hostile ones, so that enough specs get through to vLLM's parser.
word = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]|[._-][A-Za-z0-9]){0,12}", fullmatch=True).filter(
    lambda w: not w.endswith(".git"))
plain_uri = st.builds(lambda o, n: f"hf://{o}/{n}", word, word)
plain_env = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True)


@st.composite
def hostile(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    """A spec with some fields attacked, and the field paths attacked (a refusal must name one)."""
    spec: dict[str, Any] = {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}, "gpu": {"count": 1},
                            "engine": {"version": VERSION, "maxModelLen": 4096}}
    attacked: set[str] = set()

    def attack(path: str) -> bool:
        if draw(st.integers(0, 3)) == 0:
            attacked.add(path)
            return True
        return False

    if attack("spec.model.uri"):
        scheme = draw(st.sampled_from(["hf://", "pvc://", "s3://", "gs://", "file:///", ""]))
        hostile_uri = st.builds(lambda a, sep, b: scheme + a + sep + b, text, st.sampled_from(["", "/"]), text)
        spec["model"]["uri"] = draw(st.one_of(hostile_uri, plain_uri))
    if attack("spec.model.servedName"):
        spec["model"]["servedName"] = draw(st.one_of(text, word))
    if attack("spec.gpu.product"):
        spec["gpu"]["product"] = draw(st.one_of(text, word))
    if attack("spec.gpu.count"):
        spec["gpu"]["count"] = draw(st.one_of(huge, st.integers(1, 16)))
    if attack("spec.engine.maxModelLen"):
        spec["engine"]["maxModelLen"] = draw(huge)
    if attack("spec.engine.maxNumSeqs"):
        spec["engine"]["maxNumSeqs"] = draw(huge)
    if attack("spec.engine.gpuMemoryUtilization"):
        spec["engine"]["gpuMemoryUtilization"] = draw(st.floats(allow_nan=True, allow_infinity=True))
    if attack("spec.engine.env"):
        names = st.one_of(st.sampled_from(OWNED_ENV), st.text(max_size=12), plain_env)
        spec["engine"]["env"] = draw(st.dictionaries(names, st.one_of(text, word), max_size=3))
    if attack("spec.engine.args"):
        item = st.one_of(st.sampled_from(SPELLINGS), st.sampled_from(BENIGN_ARGS), text,
                         st.builds(lambda f, v: f"{f}={v}", st.sampled_from(SPELLINGS), text))
        spec["engine"]["args"] = draw(st.lists(item, max_size=4))
    return body("hostile", spec), attacked


def refusal(doc: dict[str, Any]) -> str | None:
    """The one-line refusal (pydantic, then the engine release's checks), or None when it renders."""
    try:
        llm = api.LLMDeployment.model_validate(doc)
    except ValidationError as exc:
        return describe_validation(exc)
    problems = engines.spec_problems(llm.spec)
    return str(problems[0]) if problems else None


@cache
def outcome() -> tuple[list[Line], list[str], int]:
    """(rendered lines, refusals that name no attacked field, examples seen), from one hypothesis run."""
    lines: list[Line] = []
    misnamed: list[str] = []
    seen = [0]

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(hostile())
    def collect(drawn: tuple[dict[str, Any], set[str]]) -> None:
        doc, attacked = drawn
        seen[0] += 1
        why = refusal(doc)
        if why is not None:
            if not any(why.startswith(path) for path in attacked):
                misnamed.append(f"{sorted(attacked)} -> {why}")
            return
        line = rendered(f"hostile-{len(lines)}", doc, None)
        assert line is not None
        lines.append(line)

    collect()
    return lines, misnamed, seen[0]


def test_every_refusal_names_an_attacked_field() -> None:
    _, misnamed, seen = outcome()
    assert seen >= 500, seen
    assert not misnamed, "\n".join(misnamed[:20])


def test_what_renders_is_parsed_by_vllm_as_intended() -> None:
    lines, _, seen = outcome()
    # Enough of the generated specs must get through, or the property says little.
    assert len(lines) >= 100, f"only {len(lines)} of {seen} hostile specs rendered"
    verdicts = {r["id"]: r for r in judge(VERSION, tuple((ln.ident, tuple(ln.argv)) for ln in lines))["results"]}
    wrong = misparsed(lines, verdicts, VERSION)
    print(f"{seen} hostile specs: {seen - len(lines)} refused naming the field, {len(lines)} rendered and "
          f"parsed by vLLM {VERSION}, {len(wrong)} wrong")
    assert not wrong, "\n".join(wrong[:20])
