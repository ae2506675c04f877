"""What Kubernetes refuses is shown: a GPU ResourceQuota too small for the pod, and a PodSecurity
`restricted` namespace. The ReplicaSet cannot create the pod (FailedCreate); the LLMDeployment must say
so with Degraded=True and the API's own message within a minute.

The expected texts are the apiserver's (k8s.io/apiserver quota admission: "exceeded quota: <name>";
pod-security-admission: `violates PodSecurity "restricted:latest"`), not the operator's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from faultkit import Figure, Operators, apply, condition, llm, llm_body, make_namespace, record
from helpers import wait_for
from operator_fixture import OperatorProcess
from private_cluster import PrivateCluster

pytestmark = pytest.mark.cluster


def wait_degraded(pc: PrivateCluster, ns: str, name: str, text: str, op: OperatorProcess,
                  t0: float) -> tuple[float, dict[str, Any]]:
    """Wait for Degraded=True whose message contains text; returns (seconds since t0, the condition)."""
    try:
        cond: dict[str, Any] = wait_for(
            lambda: (c := condition(llm(pc, ns, name), "Degraded")).get("status") == "True"
            and text in c.get("message", "") and c,
            timeout=max(1.0, 60 - (time.monotonic() - t0)), interval=0.5, message=f"Degraded=True naming {text!r}")
    except AssertionError as e:
        status = (llm(pc, ns, name).get("status") or {})
        raise AssertionError(f"{e}\n{ns}/{name} conditions now: {json.dumps(status.get('conditions'), indent=1)}\n"
                             f"operator log:\n{op.log_tail()}") from None
    return time.monotonic() - t0, cond


def test_gpu_quota_and_pod_security_show_as_degraded(fc: PrivateCluster, ops: Operators) -> None:
    op = ops.start("adm")
    quota_ns = make_namespace(fc, "quota")
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "gpus"},
             "spec": {"hard": {"requests.nvidia.com/gpu": "2"}}}
    fc.kubectl("apply", "-n", quota_ns, "-f", "-", input=json.dumps(quota))
    psa_ns = make_namespace(fc, "restricted", labels={"pod-security.kubernetes.io/enforce": "restricted"})

    t0 = time.monotonic()
    # Llama-3.1-8B's published config: 32 heads, so tensor-parallel 4 is valid and it fits 4 H100s.
    llama = {"numLayers": 32, "numAttentionHeads": 32, "numKeyValueHeads": 8, "headDim": 128,
             "parameters": 8.03e9, "maxPositionEmbeddings": 131072}
    big = llm_body("big", gpus=4)
    big["spec"]["model"] = {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "architecture": llama}
    apply(fc, quota_ns, big)
    apply(fc, psa_ns, llm_body("plain"))
    t_quota, cq = wait_degraded(fc, quota_ns, "big", "exceeded quota", op, t0)
    t_psa, cp = wait_degraded(fc, psa_ns, "plain", "violates PodSecurity", op, t0)
    for ns, name, cond in ((quota_ns, "big", cq), (psa_ns, "plain", cp)):
        obj = llm(fc, ns, name)
        assert condition(obj, "Ready").get("status") != "True", obj["status"]
        assert (obj.get("status") or {}).get("readyReplicas", 0) == 0
        print(f"\nDEGRADED {ns}/{name}: {cond['reason']}: {cond['message']}")
    # Both children exist: the refusal is of the pods, not of the Deployment.
    assert fc.apps.read_namespaced_deployment("big", quota_ns).spec.replicas == 1
    record(Figure("GPU quota / PodSecurity restricted", injected=2, converge=[t_quota, t_psa],
                  notes=f"Degraded=True after {t_quota:.1f} s (quota: {cq['reason']}) and {t_psa:.1f} s "
                        f"(PodSecurity: {cp['reason']})"))
