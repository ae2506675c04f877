"""The model cache in the API, the rendering of replicas, the operator's settings and `modelfleet render`/`plan`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelfleet import api, cli, render
from modelfleet.settings import Settings, SettingsError

SMALL = {"numLayers": 24, "numAttentionHeads": 14, "numKeyValueHeads": 2, "headDim": 64, "parameters": 4.94e8}


def body(name: str = "a", uri: str = "hf://Qwen/Qwen2.5-0.5B-Instruct", **model: Any) -> dict[str, Any]:
    return {"apiVersion": "modelfleet.io/v1alpha1", "kind": "LLMDeployment",
            "metadata": {"name": name, "namespace": "serving"},
            "spec": {"model": {"uri": uri, "architecture": SMALL, **model},
                     "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}, "engine": {"maxModelLen": 8192}}}


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"uri": "file:///models/qwen", "cache": {"enabled": True}}, ["pvc://<claim>/<path>", "hf://"]),
        ({"uri": "pvc://models/qwen", "cache": {"enabled": True}}, ["pvc:// is already a volume"]),
        ({"uri": "s3://bucket-a/qwen", "cache": {"enabled": True}}, ["streamed"]),
        ({"uri": "pvc://models/qwen", "revision": "v2"}, ["model.revision is for hf://"]),
        ({"cache": {"enabled": True, "size": "lots"}}, ["size"]),
        ({"cache": {"enabled": True, "reclaim": "Recycle"}}, ["reclaim"]),
        ({"cache": {"enabled": True, "accessMode": "ReadOnlyMany"}}, ["accessMode"]),
    ],
)
def test_api_refuses_what_the_cache_cannot_do(model: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        api.LLMDeployment.model_validate(body(**model))
    text = str(info.value)
    for word in words:
        assert word in text, text


def test_replicas_from_the_cache_mount_it_read_only_and_stay_offline() -> None:
    llm = api.LLMDeployment.model_validate(body(cache={"enabled": True}, revision="v2"))
    dep = render.deployment(llm, render.RenderChoices(replicas=1, weights_bytes=988_000_000, cache_claim="cache-x"))
    pod = dep["spec"]["template"]["spec"]
    assert {"name": "model-cache", "persistentVolumeClaim": {"claimName": "cache-x", "readOnly": True}} in pod[
        "volumes"]
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "model-cache")
    assert mount["readOnly"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HUB_CACHE"].startswith(mount["mountPath"])
    args = container["args"]
    assert args[0] == "Qwen/Qwen2.5-0.5B-Instruct" and args[args.index("--revision") + 1] == "v2"
    assert "--download-dir" not in args  # vLLM would create its lock file there: the mount is read-only
    # the weights are not downloaded into the pod's own cache emptyDir any more: only the fixed 10 GiB
    cache_dir = next(v for v in pod["volumes"] if v["name"] == "cache")
    assert cache_dir["emptyDir"]["sizeLimit"] == "10Gi"
    without = render.deployment(llm, render.RenderChoices(replicas=1, weights_bytes=988_000_000))
    assert "HF_HUB_OFFLINE" not in {e["name"] for e in without["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODELFLEET_CACHE_ACCESS_MODE": "ReadOnlyMany"}, "MODELFLEET_CACHE_ACCESS_MODE"),
        ({"MODELFLEET_CACHE_STORAGE_CLASS": "Not_A_Name"}, "MODELFLEET_CACHE_STORAGE_CLASS"),
        ({"MODELFLEET_CACHE_BACKOFF_LIMIT": "-1"}, "MODELFLEET_CACHE_BACKOFF_LIMIT"),
        ({"MODELFLEET_CACHE_ENABLED": "maybe"}, "MODELFLEET_CACHE_ENABLED"),
        ({"MODELFLEET_CACHE_HEADROOM_PERCENT": "0"}, "MODELFLEET_CACHE_HEADROOM_PERCENT"),
    ],
)
def test_bad_cache_settings_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


def test_cache_settings_from_the_chart_values() -> None:
    settings = Settings.from_env({"MODELFLEET_CACHE_ENABLED": "true", "MODELFLEET_CACHE_STORAGE_CLASS": "nfs",
                                  "MODELFLEET_CACHE_ACCESS_MODE": "ReadWriteOnce",
                                  "MODELFLEET_CACHE_HEADROOM_PERCENT": "20", "MODELFLEET_CACHE_BACKOFF_LIMIT": "0"})
    c = settings.cache
    assert (c.enabled, c.storage_class_name, c.access_mode, c.headroom_percent, c.backoff_limit) == (
        True, "nfs", "ReadWriteOnce", 20, 0)
    assert Settings.from_env({}).cache.enabled is False


def test_render_shows_one_pvc_and_one_job_for_two_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([body("a", cache={"enabled": True}), body("b", cache={"enabled": True})]))
    assert cli.main(["render", "-f", str(path)]) == 0
    kinds = [(o["kind"], o["metadata"]["name"]) for o in yaml.safe_load_all(capsys.readouterr().out)]
    claims = [n for k, n in kinds if k == "PersistentVolumeClaim"]
    assert len(claims) == 1 and [n for k, n in kinds if k == "Job"] == claims
    assert sorted(n for k, n in kinds if k == "Deployment") == ["a", "b"]


@pytest.mark.parametrize("command", ["render", "plan"])
def test_cli_exits_2_on_a_cache_smaller_than_the_checkpoint(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(body(cache={"enabled": True, "size": "512Mi"})))
    assert cli.main([command, "-f", str(path)]) == 2
    err = capsys.readouterr().err
    # 4.94e8 parameters x 2 bytes = 988,000,000 B = 0.92 GiB against 512Mi = 0.5 GiB
    assert "512Mi (0.5 GiB)" in err and "0.9 GiB" in err, err
