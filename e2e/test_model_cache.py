"""The shared model cache on the local cluster: a real PV controller binds the PVC to a static PV, the real Job
controller runs the download pod, and KWOK's model-cache stages (localcluster/kwokstages.py) finish it.

These tests run their own operator (namespaces `mc-*`, download backoffLimit 1) so that the session operator
(`t-*`) never sees their objects. Each prints the time every phase took (`CACHE ...` lines; run with -s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch

from helpers import Cluster, wait_for
from localcluster import kwokstages
from operator_fixture import OperatorProcess, start_operator

pytestmark = pytest.mark.cluster
GROUP, VERSION, PLURAL = "modelfleet.io", "v1alpha1", "llmdeployments"
ROOT = Path(__file__).resolve().parents[1]
# Qwen2.5-0.5B's published config.json: 494M parameters, so BF16 weights are 4.94e8 x 2 = 988,000,000 bytes.
SMALL = {"numLayers": 24, "numAttentionHeads": 14, "numKeyValueHeads": 2, "headDim": 64, "parameters": 4.94e8,
         "maxPositionEmbeddings": 32768}
WEIGHTS_BYTES = 988_000_000
# Default cache size by hand: 988e6 B = 0.920 GiB; x 1.10 headroom = 1.012 GiB -> 2 GiB whole, + 1 GiB fixed = 3Gi.
DEFAULT_SIZE = "3Gi"
RESYNC_SECONDS = 3


@pytest.fixture(scope="module")
def cache_operator(cluster: Cluster, crd: Path) -> Iterator[OperatorProcess]:
    """`modelfleet run` for the `mc-*` namespaces, with one retry of a failed download (the Job's backoffLimit)."""
    handle = start_operator(
        cluster.kubeconfig,
        cluster.state_dir / "logs" / "operator-model-cache.log",
        namespaces="mc-*",
        resync_seconds=str(RESYNC_SECONDS),
        metrics_mode="off",
        cache_backoff_limit="1",
    )
    yield handle
    handle.proc.terminate()
    try:
        handle.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        handle.proc.kill()


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh `mc-<test>-<hex>` namespace, its StorageClass and a static 5Gi ReadWriteMany PV of that class."""
    name = f"mc-{request.node.name.removeprefix('test_')[:30].replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    # No provisioner: the PV controller binds the claim to the PV below (Immediate binding).
    objects = [
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
         "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate"},
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
         "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany"], "storageClassName": name,
                  "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/tmp/modelfleet-e2e/{name}"}}},
    ]
    cluster.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(o) for o in objects))
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        pvcs = cluster.kubectl("get", "pvc,pv", "-n", name, "-o", "wide", check=False).stdout
        print(f"\n===== namespace {name} after the failure =====\n{cluster.dump(name)}\n{pvcs}")
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
    cluster.kubectl("delete", "pv,storageclass", name, "--wait=false", "--ignore-not-found", check=False)


def llm(name: str, uri: str = "hf://Qwen/Qwen2.5-0.5B-Instruct", **cache: Any) -> str:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name},
        "spec": {"model": {"uri": uri, "architecture": SMALL, "cache": {"enabled": True, **cache}},
                 "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"}, "engine": {"maxModelLen": 8192},
                 "replicas": 1},
    }
    return yaml.safe_dump(body)


def get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return obj


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((dict(c) for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def reasons(cluster: Cluster, namespace: str, name: str) -> dict[str, str]:
    out = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}",
                          "-o", "json")
    return {e["reason"]: e["message"] for e in json.loads(out.stdout)["items"]}


def caches(cluster: Cluster, namespace: str) -> tuple[list[Any], list[Any]]:
    """The PVCs and Jobs labelled as model caches in a namespace."""
    pvcs = cluster.core.list_namespaced_persistent_volume_claim(namespace, label_selector="modelfleet.io/cache").items
    jobs = client.BatchV1Api(cluster.kube).list_namespaced_job(namespace, label_selector="modelfleet.io/cache").items
    return pvcs, jobs


def deployment(cluster: Cluster, namespace: str, name: str) -> Any:
    found = cluster.apps.list_namespaced_deployment(namespace, field_selector=f"metadata.name={name}").items
    return found[0] if found else None


def test_pending_downloading_ready_then_replicas_mount_it_read_only(
    cluster: Cluster, cache_operator: OperatorProcess, ns: str
) -> None:
    # Every status write is a watch event: phases that last milliseconds are seen too (a poll would miss them).
    start = cluster.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"]["resourceVersion"]
    t0 = time.monotonic()
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=llm("qwen", storageClassName=ns))
    seen: dict[str, float] = {}
    deployment_before_ready: list[str] = []
    pod_phases: list[str] = []
    stream = watch.Watch().stream(cluster.custom.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL,
                                  resource_version=start, timeout_seconds=90)
    for event in stream:
        phase = ((event["object"].get("status") or {}).get("cache") or {}).get("phase")
        if phase and phase not in seen:
            seen[phase] = time.monotonic() - t0
            if phase != "Ready" and deployment(cluster, ns, "qwen") is not None:
                deployment_before_ready.append(phase)
            if phase == "Downloading":  # true to the pod: it runs (or has just finished, read a moment later)
                pod_phases = [p.status.phase for p in cluster.core.list_namespaced_pod(
                    ns, label_selector="modelfleet.io/cache").items]
        if phase == "Ready":
            break
    assert "Ready" in seen, f"cache not Ready in 90 s; seen {seen}; log:\n{cache_operator.log_tail()}"
    dep = wait_for(lambda: deployment(cluster, ns, "qwen"), timeout=30, message="the Deployment after CacheReady")
    t_dep = time.monotonic() - t0
    ready = wait_for(lambda: (o := get(cluster, ns, "qwen"))["status"].get("phase") == "Ready" and o, timeout=60,
                     message="llm/qwen Ready")
    t_ready = time.monotonic() - t0
    print(f"\nCACHE flow: first seen Pending {seen.get('Pending', -1):.1f} s, "
          f"Downloading {seen.get('Downloading', -1):.1f} s, Ready {seen['Ready']:.1f} s; "
          f"Deployment {t_dep:.1f} s; LLMDeployment Ready {t_ready:.1f} s after apply")
    assert {"Pending", "Downloading", "Ready"} <= set(seen), seen
    assert seen["Pending"] < seen["Downloading"] < seen["Ready"], seen
    assert pod_phases and set(pod_phases) <= {"Running", "Succeeded"}, pod_phases
    assert not deployment_before_ready, f"a Deployment existed while the cache was {deployment_before_ready}"

    st = ready["status"]["cache"]
    assert st["bytesDone"] == kwokstages.DOWNLOADED_BYTES and st["bytesTotal"] == WEIGHTS_BYTES, st
    assert "lastError" not in st, st
    assert condition(ready, "CacheReady")["status"] == "True"
    pvcs, jobs = caches(cluster, ns)
    assert [p.metadata.name for p in pvcs] == [j.metadata.name for j in jobs] == [st["claim"]]
    pvc = pvcs[0]
    assert pvc.status.phase == "Bound" and pvc.spec.volume_name == ns, pvc.status
    assert pvc.spec.resources.requests["storage"] == DEFAULT_SIZE and pvc.spec.access_modes == ["ReadWriteMany"]
    assert not pvc.metadata.owner_references and not jobs[0].metadata.owner_references
    download = jobs[0].spec.template.spec.containers[0]
    assert download.image == dep.spec.template.spec.containers[0].image  # the server's own image and hf CLI
    assert "Qwen/Qwen2.5-0.5B-Instruct" in download.args and "main" in download.args

    pod = dep.spec.template.spec
    volume = next(v for v in pod.volumes if v.persistent_volume_claim is not None)
    assert volume.persistent_volume_claim.claim_name == st["claim"] and volume.persistent_volume_claim.read_only
    mount = next(m for m in pod.containers[0].volume_mounts if m.name == volume.name)
    assert mount.read_only, mount
    env = {e.name: e.value for e in pod.containers[0].env}
    assert env["HF_HUB_OFFLINE"] == "1" and env["HF_HUB_CACHE"].startswith(mount.mount_path), env
    pods = cluster.core.list_namespaced_pod(ns, label_selector="modelfleet.io/deployment=qwen").items
    assert len(pods) == 1 and pods[0].status.phase == "Running"
    assert ready["status"]["replicaPhases"]["serving"] == 1, ready["status"]

    said = reasons(cluster, ns, "qwen")
    assert {"CreatedCache", "CreatedDownloadJob", "DownloadStarted", "CacheReady", "CreatedDeployment"} <= set(said)
    table = cluster.kubectl("get", "llm", "qwen", "-n", ns).stdout
    assert "CACHE" in table.splitlines()[0] and "Ready" in table.splitlines()[1], table

    # reclaim: Retain (the default): deleting the only user keeps the data through later resync rounds.
    rounds = cache_operator.metric("modelfleet_resync_rounds_total")
    cluster.kubectl("delete", "llm", "qwen", "-n", ns)
    wait_for(lambda: cache_operator.metric("modelfleet_resync_rounds_total") >= rounds + 2, timeout=30,
             message="two resync rounds after the deletion")
    pvcs, jobs = caches(cluster, ns)
    assert len(pvcs) == 1 and pvcs[0].metadata.deletion_timestamp is None and len(jobs) == 1


def test_failed_download_is_cache_ready_false_and_no_replicas(
    cluster: Cluster, cache_operator: OperatorProcess, ns: str
) -> None:
    t0 = time.monotonic()
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=llm("broken", f"hf://{kwokstages.FAILING_REPO}",
                                                            storageClassName=ns))
    failed = wait_for(
        lambda: condition(o := get(cluster, ns, "broken"), "CacheReady").get("reason") == "DownloadFailed" and o,
        timeout=90, interval=0.3, message=f"CacheReady=False DownloadFailed; log:\n{cache_operator.log_tail()}")
    print(f"\nCACHE failure: apply -> CacheReady=False (DownloadFailed, after 1 retry) {time.monotonic() - t0:.1f} s")
    cond = condition(failed, "CacheReady")
    st = failed["status"]
    assert cond["status"] == "False" and st["cache"]["phase"] == "Failed", st
    # The pod's own words (what KWOK, as the kubelet, reported) reach status and the condition.
    assert kwokstages.FAILURE_MESSAGE in st["cache"]["lastError"] and "429" in cond["message"], st["cache"]
    assert condition(failed, "Degraded")["reason"] == "CacheFailed" and st["phase"] == "Degraded"
    assert deployment(cluster, ns, "broken") is None
    job = caches(cluster, ns)[1][0]
    assert job.status.failed == 2, job.status  # backoffLimit 1: the first try and one retry
    said = reasons(cluster, ns, "broken")
    assert "DownloadFailed" in said and "429" in said["DownloadFailed"], said


def test_two_deployments_of_one_model_share_one_cache(
    cluster: Cluster, cache_operator: OperatorProcess, ns: str
) -> None:
    t0 = time.monotonic()
    both = llm("alpha", storageClassName=ns, reclaim="Delete") + "---\n" + llm("beta", storageClassName=ns)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=both)
    for name in ("alpha", "beta"):
        wait_for(lambda n=name: get(cluster, ns, n).get("status", {}).get("phase") == "Ready", timeout=90,
                 message=f"llm/{name} Ready; log:\n{cache_operator.log_tail()}")
    print(f"\nCACHE shared: two LLMDeployments of one model Ready {time.monotonic() - t0:.1f} s after apply")
    pvcs, jobs = caches(cluster, ns)
    assert len(pvcs) == 1 and len(jobs) == 1, ([p.metadata.name for p in pvcs], [j.metadata.name for j in jobs])
    claim = pvcs[0].metadata.name
    for name in ("alpha", "beta"):
        vols = deployment(cluster, ns, name).spec.template.spec.volumes
        assert [v.persistent_volume_claim.claim_name for v in vols if v.persistent_volume_claim] == [claim]
        assert get(cluster, ns, name)["status"]["cache"]["claim"] == claim
    print(f"CACHE objects: PersistentVolumeClaim/{claim}, Job/{claim}, Deployment/alpha, Deployment/beta, "
          "Service/alpha, Service/beta")
    # alpha asks for Delete, beta keeps the default Retain: one Retain keeps the data.
    assert pvcs[0].metadata.annotations["modelfleet.io/reclaim"] == "Retain"

    cluster.kubectl("delete", "llm", "beta", "-n", ns)
    wait_for(lambda: caches(cluster, ns)[0][0].metadata.annotations["modelfleet.io/reclaim"] == "Delete",
             timeout=30, message="reclaim Delete once only alpha (Delete) uses the cache")
    t1 = time.monotonic()
    cluster.kubectl("delete", "llm", "alpha", "-n", ns)

    def reclaimed() -> bool:
        pvcs, jobs = caches(cluster, ns)
        return not jobs and all(p.metadata.deletion_timestamp for p in pvcs)

    wait_for(reclaimed, timeout=30, message=f"the cache deleted with its last user; log:\n{cache_operator.log_tail()}")
    print(f"CACHE reclaim: last user deleted -> Job gone, PVC deleted {time.monotonic() - t1:.1f} s")


def test_bad_cache_input_is_refused_with_what_to_do(cluster: Cluster, cache_operator: OperatorProcess, ns: str) -> None:
    # file:// cannot be downloaded: the API server refuses it and names the alternatives.
    refused = cluster.kubectl("apply", "-n", ns, "-f", "-", input=llm("local", "file:///models/qwen"), check=False)
    assert refused.returncode != 0 and "pvc://" in refused.stderr and "hf://" in refused.stderr, refused.stderr

    # Smaller than the checkpoint (988,000,000 B = 0.92 GiB > 512Mi): refused with both numbers, nothing created.
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=llm("tiny", storageClassName=ns, size="512Mi"))
    small = wait_for(lambda: condition(o := get(cluster, ns, "tiny"), "CacheReady").get("reason") == "CacheTooSmall"
                     and o, timeout=30, message=f"CacheTooSmall; log:\n{cache_operator.log_tail()}")
    message = condition(small, "CacheReady")["message"]
    assert "512Mi (0.5 GiB)" in message and "0.9 GiB" in message, message
    assert "CacheTooSmall" in reasons(cluster, ns, "tiny")
    assert deployment(cluster, ns, "tiny") is None and caches(cluster, ns) == ([], [])
    render = subprocess.run([sys.executable, "-m", "modelfleet.cli", "render", "-f", "-"], input=llm("tiny",
                            size="512Mi").replace("name: tiny", f"name: tiny\n  namespace: {ns}"), text=True,
                            capture_output=True, check=False)
    assert render.returncode == 2 and "0.9 GiB" in render.stderr, render.stderr

    # A StorageClass that does not exist: the API's own message, and no PVC left Pending behind it.
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=llm("nowhere", storageClassName="no-such-class"))
    missing = wait_for(
        lambda: condition(o := get(cluster, ns, "nowhere"), "CacheReady").get("reason") == "StorageClassNotFound"
        and o, timeout=30, message=f"StorageClassNotFound; log:\n{cache_operator.log_tail()}")
    message = condition(missing, "CacheReady")["message"]
    assert 'storageclasses.storage.k8s.io "no-such-class" not found' in message, message
    assert missing["status"]["cache"]["phase"] == "Pending" and deployment(cluster, ns, "nowhere") is None
    assert caches(cluster, ns) == ([], [])
