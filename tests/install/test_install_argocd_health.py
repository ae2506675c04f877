"""The Argo CD health check for LLMDeployment, run the way Argo CD runs it.

Argo CD (util/lua/lua.go) evaluates health.lua in gopher-lua, a Lua 5.1 VM, with the object as
the global `obj`; scripts configured through argocd-cm get only the base, table, package and a
"safe" os library (no string, math, io or debug). It reads the returned table as
{status, message}, maps an unknown status to Unknown, and its own health_test.yaml runner
compares status and message exactly. Here the same script runs under lupa's Lua 5.1 with the
same restricted globals, for every case in health_test.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHECK_DIR = ROOT / "manifests" / "argocd" / "modelfleet.io" / "LLMDeployment"
SCRIPT = (CHECK_DIR / "health.lua").read_text()
CASES: list[dict[str, Any]] = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"]
VALID = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# What argocd-cm scripts may use: Argo CD skips the standard libraries and opens only these.
_SANDBOX = """
local keep = {assert=1, error=1, ipairs=1, next=1, pairs=1, pcall=1, print=1, rawequal=1, rawget=1,
  rawset=1, select=1, setmetatable=1, getmetatable=1, tonumber=1, tostring=1, type=1, unpack=1,
  xpcall=1, _G=1, _VERSION=1, table=1, os=1, require=1, package=1, load=1, loadstring=1}
local safe_os = {time=os.time, date=os.date, clock=os.clock}
debug.getmetatable("").__index = nil   -- no ("x"):upper() without the string library
for name in pairs(_G) do
  if not keep[name] then _G[name] = nil end
end
os = safe_os
"""


def _to_lua(runtime: Any, value: Any) -> Any:
    """JSON-like Python data -> Lua values, as Argo CD's decodeValue does (arrays 1-based)."""
    if isinstance(value, dict):
        return runtime.table_from({k: _to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([_to_lua(runtime, v) for v in value])
    return value


def run_health(obj: dict[str, Any], script: str = SCRIPT) -> dict[str, str]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=False)
    assert runtime.eval("_VERSION") == "Lua 5.1"
    runtime.execute(_SANDBOX)
    runtime.globals().obj = _to_lua(runtime, obj)
    result = runtime.execute(script)
    assert lua51.lua_type(result) == "table", f"health.lua must return a table, returned {result!r}"
    status, message = result["status"], result["message"]
    if status not in VALID:
        return {"status": "Unknown", "message": "Lua returned an invalid health status"}
    return {"status": status, "message": message or ""}


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_case(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    want = {"status": case["healthStatus"]["status"], "message": case["healthStatus"].get("message", "")}
    got = run_health(obj)
    assert got == want, (
        f"{case['inputPath']}: health.lua returned {got}, health_test.yaml expects {want}\n"
        f"status: {yaml.safe_dump(obj.get('status'), sort_keys=False)}"
    )


def test_cases_cover_each_outcome_and_every_testdata_file() -> None:
    statuses = {c["healthStatus"]["status"] for c in CASES}
    assert {"Healthy", "Progressing", "Degraded"} <= statuses, f"health_test.yaml only covers {statuses}"
    referenced = {(CHECK_DIR / c["inputPath"]).resolve() for c in CASES}
    on_disk = {p.resolve() for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert on_disk == referenced, f"testdata not in health_test.yaml: {sorted(on_disk - referenced)}; " \
                                  f"missing files: {sorted(referenced - on_disk)}"


@pytest.mark.parametrize(
    ("snippet", "why"),
    [
        ('hs = {status = string.upper("healthy")} return hs', "the string library is not loaded"),
        ('hs = {status = ("x"):upper()} return hs', "string methods are not available"),
        ('return {status = tostring(math.floor(1.5))}', "the math library is not loaded"),
    ],
)
def test_sandbox_matches_argocd_restrictions(snippet: str, why: str) -> None:
    """The harness must refuse what Argo CD refuses, or it would pass scripts that fail there."""
    try:
        got = run_health({}, snippet)
    except lua51.LuaError:
        return
    pytest.fail(f"{snippet!r} ran (returned {got}) but must fail under Argo CD: {why}")


def test_invalid_status_maps_to_unknown() -> None:
    assert run_health({}, 'return {status = "Fine"}') == {
        "status": "Unknown", "message": "Lua returned an invalid health status"}
