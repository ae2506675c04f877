"""vLLM's own parser judges every command line modelfleet renders, for each supported release.

Command lines: every example in examples/, every case of tests/cases/valid_llmdeployments.yaml
and the base spec of the invalid cases, and a few hundred hypothesis-generated specs. For each,
every field the operator owns must come out of `vllm serve`'s parser exactly as the spec says.
Expected values are computed here by hand from the spec and the CRD's documented defaults
(gpuMemoryUtilization 0.9, maxNumSeqs 256, kvCacheDtype auto, prefix caching on), never read
back from the renderer. Runs in the cached vllm virtualenvs (`make vllm-venv`); a missing one fails.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from vllm_venv import ROOT, judge

from modelfleet import api, engines, render
from modelfleet.engines import vllm
from modelfleet.fitcheck import check_fit

CASES = ROOT / "tests" / "cases"
HYPOTHESIS_SPECS = 400  # >= 100 lines per release even where hypothesis draws fewer of one
# vLLM's --max-model-len help: "-1 or 'auto' -> Automatically choose the maximum model length that
# fits in GPU memory" (vllm/config/model.py, 0.32.0); the parser stores -1. 0.11.0's parser takes
# only numbers (human_readable_int), so there the planner's number is rendered.
AUTO_MAX_MODEL_LEN = -1
RELEASES_WITH_AUTO = {"0.32.0"}
# Passthrough flags users commonly add; each must exist in every supported release.
PASSTHROUGH_POOL = ["--enforce-eager", "--disable-log-stats", "--max-num-batched-tokens=8192", "--seed=7",
                    "--trust-remote-code", "--enable-chunked-prefill", "--block-size=16"]
# Passthrough that some or all releases refuse (gone in 0.12, ambiguous, missing its value): modelfleet
# must refuse a spec with them exactly when vLLM's parser would.
BAD_PASSTHROUGH = ["--disable-log-requests", "--swap-space=4", "--max", "--seed"]


def body(name: str, spec: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    """A whole LLMDeployment object."""
    return {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a case over the base spec (as the case files describe)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def expected(doc: dict[str, Any], version: str, planned: int | None) -> dict[str, Any]:
    """What vLLM's parser must produce for the owned destinations, worked out from the spec alone."""
    spec = doc["spec"]
    scheme, _, rest = spec["model"]["uri"].partition("://")
    model = {"hf": rest, "pvc": f"/models/{rest}", "file": rest}.get(scheme, spec["model"]["uri"])
    engine = spec.get("engine") or {}
    quant = spec.get("quantization", "none")
    max_len = engine.get("maxModelLen") or (AUTO_MAX_MODEL_LEN if version in RELEASES_WITH_AUTO else planned)
    return {
        "model": model,
        "served_model_name": [spec["model"].get("servedName") or doc["metadata"]["name"]],
        "host": "0.0.0.0",
        "port": 8000,
        "tensor_parallel_size": (spec.get("gpu") or {}).get("count", 1),
        "quantization": None if quant == "none" else quant,
        "max_model_len": max_len,
        "gpu_memory_utilization": float(engine.get("gpuMemoryUtilization", 0.9)),
        "max_num_seqs": engine.get("maxNumSeqs", 256),
        "kv_cache_dtype": engine.get("kvCacheDtype", "auto"),
        "enable_prefix_caching": engine.get("enablePrefixCaching", True),
        "api_key": None,
    }


class Line:
    """One rendered command line and what vLLM must make of it (`refused`: modelfleet's reason to
    refuse its engine.args, which vLLM's parser must then refuse too)."""

    def __init__(self, ident: str, version: str, argv: list[str], want: dict[str, Any], env: list[dict[str, Any]],
                 refused: str | None = None):
        self.ident, self.version, self.argv, self.want, self.env = ident, version, argv, want, env
        self.refused = refused


def rendered(ident: str, doc: dict[str, Any], planned: int | None) -> Line | None:
    """Render one spec as the operator would; None when the release refuses it for other than engine.args."""
    try:
        llm = api.LLMDeployment.model_validate(doc)
        schema_refusal = None
    except ValidationError as exc:
        # The CRD-level check (pydantic twin) refuses owned spellings and prefixes before the release's
        # table does; render what the args would have been, to compare that refusal with vLLM's too.
        if any(tuple(e["loc"][:3]) != ("spec", "engine", "args") for e in exc.errors()):
            raise
        args = doc["spec"]["engine"]["args"]
        llm = api.LLMDeployment.model_validate(merge(doc, {"spec": {"engine": {"args": []}}}))
        llm.spec.engine.args = list(args)
        schema_refusal = str(exc.errors()[0]["msg"])
    problems = engines.spec_problems(llm.spec)
    if any(not p.field.startswith("engine.args") for p in problems):
        return None
    version = engines.engine_for(llm.spec.engine).version
    dep = render.deployment(llm, render.RenderChoices(replicas=1, max_model_len=planned))
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm", "serve"], ident
    assert container["image"] == (llm.spec.engine.image or f"vllm/vllm-openai:v{version}"), ident
    refused = schema_refusal or "; ".join(map(str, problems)) or None
    return Line(f"{ident}@{version}", version, container["args"], expected(doc, version, planned), container["env"],
                refused)


def for_each_version(ident: str, doc: dict[str, Any], planned: int | None) -> list[Line]:
    """A spec that pins no release is rendered for every supported one."""
    engine = doc["spec"].get("engine") or {}
    if engine.get("version") or engine.get("image"):
        line = rendered(ident, doc, planned)
        return [line] if line else []
    lines = []
    for version in vllm.SUPPORTED_VERSIONS:
        pinned = merge(doc, {"spec": {"engine": {"version": version}}})
        line = rendered(ident, pinned, planned)
        lines += [line] if line else []
    return lines


def example_lines() -> list[Line]:
    """Every LLMDeployment in examples/ that the operator would roll out, with the planner's choice."""
    lines: list[Line] = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != api.KIND:
                continue
            fit = check_fit(api.LLMDeployment.model_validate(doc))
            if fit.verdict.fits is False:
                continue  # not rolled out (too-big.yaml): nothing is rendered
            lines += for_each_version(f"examples/{path.name}:{doc['metadata']['name']}", doc, fit.max_model_len)
    assert not [line.ident for line in lines if line.refused], "an example is refused by its vLLM release"
    return lines


def case_lines() -> list[Line]:
    """The valid cases, and the base spec the invalid cases start from."""
    valid = yaml.safe_load((CASES / "valid_llmdeployments.yaml").read_text())
    invalid = yaml.safe_load((CASES / "invalid_llmdeployments.yaml").read_text())
    lines = for_each_version("invalid-cases-base", body("base", invalid["base"]), 4096)
    for case in valid["cases"]:
        doc = body(case.get("name", "case"), merge(valid["base"], case["spec"]))
        rendered_case = for_each_version(f"valid:{case['id']}", doc, 8192)
        assert rendered_case and not any(line.refused for line in rendered_case), f"valid case {case['id']} refused"
        lines += rendered_case
    return lines


def _uri() -> st.SearchStrategy[str]:
    # Valid per scheme (api.py: HF repo id rules, no segment starting with '-' or '.', bucket names).
    word = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_]|[._-][A-Za-z0-9]){0,15}", fullmatch=True).filter(
        lambda w: not w.endswith(".git"))
    claim = st.from_regex(r"[a-z0-9][-a-z0-9]{1,20}[a-z0-9]", fullmatch=True)
    return st.one_of(
        st.builds(lambda o, n: f"hf://{o}/{n}", word, word),
        st.builds(lambda c, p: f"pvc://{c}/{p}", claim, word),
        st.builds(lambda p: f"file:///{p}", word),
        st.builds(lambda b, p: f"s3://{b}/{p}", claim, word),
        st.builds(lambda b, p: f"gs://{b}/{p}", claim, word),
    )


@st.composite
def specs(draw: st.DrawFn) -> tuple[dict[str, Any], int | None]:
    """A valid LLMDeployment (as a document) and the planner's choice of context length."""
    model: dict[str, Any] = {"uri": draw(_uri())}
    if draw(st.booleans()):
        model["servedName"] = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,40}", fullmatch=True))
    engine: dict[str, Any] = {
        "version": draw(st.sampled_from(vllm.SUPPORTED_VERSIONS)),
        "gpuMemoryUtilization": draw(st.floats(min_value=0, max_value=1, exclude_min=True)),
        "maxNumSeqs": draw(st.integers(1, 65536)),
        "kvCacheDtype": draw(st.sampled_from([k.value for k in api.KVCacheDtype])),
        "enablePrefixCaching": draw(st.booleans()),
        "args": draw(st.lists(st.sampled_from(PASSTHROUGH_POOL + BAD_PASSTHROUGH), unique=True, max_size=3)),
    }
    if draw(st.booleans()):
        engine["maxModelLen"] = draw(st.integers(16, 10_000_000))
    spec: dict[str, Any] = {
        "model": model,
        "gpu": {"count": draw(st.integers(1, 16))},
        "quantization": draw(st.sampled_from([q.value for q in api.Quantization])),
        "engine": engine,
    }
    if draw(st.booleans()):
        spec["apiKeySecretRef"] = {"name": "key", "key": "key"}
    name = draw(st.from_regex(r"[a-z]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True))
    planned = draw(st.none() | st.integers(16, 1_000_000))
    return body(name, spec), planned


def hypothesis_lines() -> list[Line]:
    """HYPOTHESIS_SPECS generated specs that the release can serve, rendered."""
    lines: list[Line] = []

    @settings(max_examples=HYPOTHESIS_SPECS, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(specs())
    def collect(drawn: tuple[dict[str, Any], int | None]) -> None:
        doc, planned = drawn
        line = rendered(f"hypothesis-{len(lines)}", doc, planned)
        assume(line is not None)
        assert line is not None
        lines.append(line)

    collect()
    return lines


@cache
def all_lines() -> tuple[Line, ...]:
    """Every command line of this run, built once."""
    return tuple(example_lines() + case_lines() + hypothesis_lines())


def lines_for(version: str) -> list[Line]:
    """The command lines a release must parse."""
    return [line for line in all_lines() if line.version == version]


# A value per owned destination for the option-spelling probes, and what the parser makes of it.
PROBE_VALUES: dict[str, tuple[str, Any]] = {
    "tensor_parallel_size": ("2", 2),
    "max_model_len": ("4096", 4096),
    "gpu_memory_utilization": ("0.5", 0.5),
    "max_num_seqs": ("3", 3),
    "quantization": ("awq", "awq"),
    "kv_cache_dtype": ("fp8", "fp8"),
    "served_model_name": ("probe-name", ["probe-name"]),
    "host": ("10.0.0.1", "10.0.0.1"),
    "port": ("1234", 1234),
    "model": ("probe/other", "probe/other"),
    "api_key": ("probe-key", ["probe-key"]),
    "revision": ("probe-rev", "probe-rev"),
}


def probe_tokens(version: str) -> list[str]:
    """Spellings of owned options as a user might write them in engine.args: exact, with `_`,
    shortened to prefixes (some unambiguous, some not), `--no-` forms, and unknown ones."""
    tokens: list[str] = ["--max", "--enable-prefix", "--no-enable-prefix", "--max-num-s", "--tensor-parallel-sizes"]
    for name in sorted(vllm.owned_flags(version)):
        if not name.startswith("--"):
            tokens.append(name)
            continue
        tokens += [name, "--" + name[2:].replace("-", "_"), name[:-1], name[: len(name) // 2 + 2]]
    return list(dict.fromkeys(tokens))


def probe_argv(version: str, token: str) -> list[str]:
    """`vllm serve probe/model TOKEN[=VALUE]` with a value when the token selects a valued option."""
    option = vllm.flag_table(version).resolve(token)
    if option is not None and option.dest == "model":
        # 0.32 refuses a positional model next to --model; the flag alone names it.
        return [f"{token}={PROBE_VALUES['model'][0]}"]
    if option is not None and option.takes_value:
        return ["probe/model", f"{token}={PROBE_VALUES[option.dest][0]}"]
    return ["probe/model", token]


def request(version: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Everything one judge subprocess is asked for a release: command lines, then probes."""
    lines = [(line.ident, tuple(line.argv)) for line in lines_for(version)]
    probes = [(f"probe:{token}", tuple(probe_argv(version, token))) for token in probe_tokens(version)]
    return tuple(lines + probes)


def verdicts(version: str) -> dict[str, dict[str, Any]]:
    """vLLM's verdict per line id (one subprocess per release per run)."""
    return {r["id"]: r for r in judge(version, request(version))["results"]}


def owned_values(values: dict[str, Any]) -> dict[str, Any]:
    """The parsed owned values, with `vllm serve`'s rule that the positional model wins over --model."""
    out = {k: v for k, v in values.items() if k not in ("model_tag", "model", "load_format")}
    out["model"] = values["model_tag"] if values["model_tag"] is not None else values["model"]
    return out


def misparsed(lines: list[Line], got: dict[str, dict[str, Any]], version: str) -> list[str]:
    """The lines vLLM refused or read differently from what the spec says, one message each."""
    wrong = []
    for line in lines:
        complaint = disagreement(None, got[line.ident], f"{line.ident} `vllm serve {' '.join(line.argv)}`")
        if complaint:
            wrong.append(complaint)
            continue
        values = owned_values(got[line.ident]["values"])
        diffs = {k: (values[k], want) for k, want in line.want.items() if values[k] != want}
        if diffs:
            wrong.append(f"{line.ident}: `vllm serve {' '.join(line.argv)}` parsed as (got, want) {diffs}")
    return wrong


def disagreement(our_refusal: str | None, verdict: dict[str, Any], what: str) -> str | None:
    """What to complain about when modelfleet and vLLM's parser disagree on refusing `what`."""
    if our_refusal and verdict["ok"]:
        return f"{what}: modelfleet refuses ({our_refusal}) but vLLM accepts it"
    if not our_refusal and not verdict["ok"]:
        return f"{what}: vLLM refuses it: {verdict['error']}"
    return None


@pytest.mark.parametrize("version", vllm.SUPPORTED_VERSIONS)
def test_every_rendered_command_line_parses_as_intended(version: str) -> None:
    lines = lines_for(version)
    assert len(lines) >= 100, f"only {len(lines)} command lines for vLLM {version}"
    got = verdicts(version)
    wrong = []
    refused = 0
    for line in lines:
        verdict = got[line.ident]
        refused += bool(line.refused)
        complaint = disagreement(line.refused, verdict, f"{line.ident} `vllm serve {' '.join(line.argv)}`")
        if complaint or line.refused:
            wrong += [complaint] if complaint else []
            continue
        values = owned_values(verdict["values"])
        diffs = {k: (values[k], want) for k, want in line.want.items() if values[k] != want}
        if diffs:
            wrong.append(f"{line.ident}: `vllm serve {' '.join(line.argv)}` parsed as (got, want) {diffs}")
    print(f"vLLM {version}: {len(lines)} command lines parsed by vLLM's own parser ({refused} refused by "
          f"modelfleet for their engine.args), {len(wrong)} wrong")
    assert refused >= 5, "too few refused lines to compare modelfleet's refusals with vLLM's"
    assert not wrong, f"{len(wrong)} of {len(lines)} command lines wrong:\n" + "\n".join(wrong[:20])


@pytest.mark.parametrize("version", vllm.SUPPORTED_VERSIONS)
def test_secrets_never_on_the_command_line(version: str) -> None:
    for line in lines_for(version):
        assert not any(a.split("=", 1)[0] in ("--api-key", "--hf-token") for a in line.argv), line.ident
        for entry in line.env:
            if entry["name"] in ("VLLM_API_KEY", "HF_TOKEN"):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], (line.ident, entry)


@pytest.mark.parametrize("version", vllm.SUPPORTED_VERSIONS)
def test_checked_in_table_matches_the_installed_vllm(version: str) -> None:
    generated = judge(version, request(version))["table_text"]
    committed = (ROOT / "operator" / "modelfleet" / "engines" / "vllm" / "data" / f"vllm-{version}.json").read_text()
    assert generated == committed, (
        f"engines/vllm/data/vllm-{version}.json differs from what vllm {version} defines: "
        f"run `make vllm-table VERSION={version}`"
    )


@pytest.mark.parametrize("version", vllm.SUPPORTED_VERSIONS)
def test_flag_table_lookups_agree_with_vllms_parser(version: str) -> None:
    """FlagTable.resolve (what engine.args checks use) against vLLM's own parser: an option the
    table resolves is accepted and sets that destination; one it does not is refused."""
    table = vllm.flag_table(version)
    got = verdicts(version)
    tokens = probe_tokens(version)
    wrong = []
    for token in tokens:
        verdict = got[f"probe:{token}"]
        option = table.resolve(token)
        complaint = disagreement(None if option else "the table finds no single option", verdict, token)
        if complaint or option is None:
            wrong += [complaint] if complaint else []
            continue
        value = owned_values(verdict["values"]).get(option.dest)
        if option.boolean:
            want: Any = not table.sets_false(token)
        else:
            want = PROBE_VALUES[option.dest][1]
        if value != want:
            wrong.append(f"{token}: vLLM set {option.dest}={value!r}, expected {want!r}")
    print(f"vLLM {version}: {len(tokens)} option spellings checked against the flag table")
    assert len(tokens) >= 40
    assert not wrong, "\n".join(wrong)
