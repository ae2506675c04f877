"""modelfleet under a real Argo CD (v3.2.11): GitOps from a local git server into the local cluster.

The module runs on a cluster of its own (`e2e/cluster up --with-prometheus --with-argocd` in
<MODELFLEET_CLUSTER_DIR>-argocd): its first sync installs modelfleet's CRD from git, which must not exist
before, and Argo CD's controller watches every resource of the cluster it manages. The health check is
the one docs/install.md installs (argocd-cm patched with manifests/argocd/argocd-cm-patch.yaml), done by
`up --with-argocd`. The real operator (`modelfleet run`) runs beside it as a process.

Each test pushes its own repository and creates its own Application (automated sync, prune, self-heal,
server-side apply) for its own namespace, and records the Application's health/sync transitions with
timestamps (printed: run with -s). Health is Argo CD's own assessment, read from the Application.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from argocd_harness import (
    AppWatch,
    GitRepo,
    application,
    get_app,
    health,
    refresh,
    resource_health,
    summary,
    sync_status,
    synced_revision,
)
from autoscale_harness import Load, SimFleet
from helpers import sample, wait_for
from operator_fixture import OperatorProcess, start_operator
from private_cluster import PrivateCluster, private_cluster
from test_autoscaling import AUTOSCALING, SEQS
from test_operator import condition, get_llm, manifest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
FLEET_NS = "t-argocd-fleet"
ARGO_VERSION = "v3.2.11"
# Llama-3.1-70B's published config: 70.6e9 parameters are ~131 GiB in bf16, more than one 80 GB H100.
LLAMA_70B = {"numLayers": 80, "numAttentionHeads": 64, "numKeyValueHeads": 8, "headDim": 128,
             "parameters": 7.06e10, "maxPositionEmbeddings": 131072}


@dataclass
class Argo:
    """The module's cluster with Argo CD, its git server, the operator and the first ("fleet") sync."""

    pc: PrivateCluster
    git_url: str
    operator: OperatorProcess
    workdir: Path
    fleet: AppWatch
    crd_established: str
    fleet_llm_created: str


def llm_yaml(name: str, namespace: str | None = None, **spec: Any) -> str:
    body = yaml.safe_load(manifest(name, **spec))
    if namespace:
        body["metadata"]["namespace"] = namespace
    return str(yaml.safe_dump(body))


def crd_established_time(pc: PrivateCluster) -> str | None:
    res = pc.kubectl("get", "crd", "llmdeployments.modelfleet.io", "-o", "json", check=False)
    if res.returncode != 0:
        return None
    for c in json.loads(res.stdout)["status"].get("conditions") or []:
        if c["type"] == "Established" and c["status"] == "True":
            return str(c["lastTransitionTime"])
    return None


@pytest.fixture(scope="module")
def argo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Argo]:
    workdir = tmp_path_factory.mktemp("argocd")
    with private_cluster("argocd", "--with-argocd") as pc:
        git_url = pc.state["git_url"]
        assert pc.kubectl("get", "crd", "llmdeployments.modelfleet.io", check=False).returncode != 0, \
            "the module's cluster must start without modelfleet's CRD"
        # The first Application installs modelfleet from git (manifests/, as `kubectl apply -f manifests/`
        # would) together with a first LLMDeployment and its namespace: one sync, ordered by sync waves.
        repo = GitRepo(workdir / "fleet", f"{git_url}/fleet.git")
        repo.write({f"install/{p.name}": p.read_text() for p in sorted((ROOT / "manifests").glob("*.yaml"))})
        repo.write({"models/namespace.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": FLEET_NS}}),
                    "models/canary.yaml": llm_yaml("canary", FLEET_NS, replicas=1)})
        repo.commit_push("modelfleet and a first model")
        watch = AppWatch(pc, "fleet").__enter__()
        pc.kubectl("apply", "-f", "-", input=application("fleet", repo.url, FLEET_NS, recurse=True))
        established = wait_for(lambda: crd_established_time(pc), timeout=120, interval=0.5,
                               message="Argo CD applying modelfleet's CRD (Established)")
        operator = start_operator(pc.kubeconfig, pc.state_dir / "logs" / "operator-argocd.log",
                                  namespaces="t-*", prometheus_url=pc.prometheus_url or "", resync_seconds="5",
                                  autoscale_interval_seconds="3", stale_after_seconds="15", log_level="info")
        try:
            watch.wait(lambda a: health(a) == "Healthy" and sync_status(a) == "Synced", timeout=180,
                       what="the first sync Synced and Healthy")
            created = get_llm(pc, FLEET_NS, "canary")["metadata"]["creationTimestamp"]
            print(f"\nArgo CD {ARGO_VERSION}, Application fleet (manifests/ + 1 LLMDeployment), first sync:\n"
                  f"{watch.table()}\n  CRD Established {established}, LLMDeployment created {created}")
            yield Argo(pc, git_url, operator, workdir, watch, established, created)
        finally:
            watch.__exit__()
            operator.proc.terminate()
            try:
                operator.proc.wait(timeout=20)
            except Exception:
                operator.proc.kill()


@pytest.fixture
def ns(argo: Argo, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace name per test (Argo CD creates it: CreateNamespace=true); deleted afterwards with its
    Application. On failure: the namespace dump, Argo CD's log tail and the operator's."""
    name = f"t-argo-{request.node.name.removeprefix('test_')[:30].replace('_', '-')}".rstrip("-")
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        logs = Path(argo.pc.state_dir) / "logs"
        tail = "\n".join((logs / "argocd-application-controller.log").read_text(errors="replace").splitlines()[-40:])
        print(f"\n===== {name} =====\n{argo.pc.dump(name)}\n===== controller log tail =====\n{tail}\n"
              f"===== operator =====\n{argo.operator.log_tail(40)}")
    argo.pc.kubectl("-n", "argocd", "delete", "application", name, "--wait=false", "--ignore-not-found", check=False)
    argo.pc.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def new_app(argo: Argo, ns: str, files: dict[str, str]) -> tuple[GitRepo, AppWatch]:
    """Push files to <git_url>/<ns>.git and create an Application for them; returns the repo and a watcher
    started before the Application exists."""
    repo = GitRepo(argo.workdir / ns, f"{argo.git_url}/{ns}.git")
    repo.write(files)
    repo.commit_push("first models")
    watch = AppWatch(argo.pc, ns).__enter__()
    argo.pc.kubectl("apply", "-f", "-", input=application(ns, repo.url, ns))
    return repo, watch


def push_and_sync(argo: Argo, repo: GitRepo, watch: AppWatch, message: str) -> str:
    """Commit and push, ask Argo CD to refresh (a webhook's job), wait until it synced that revision."""
    sha = repo.commit_push(message)
    refresh(argo.pc, watch.name)
    watch.wait(lambda a: synced_revision(a) == sha and sync_status(a) == "Synced", timeout=90,
               what=f"synced to {sha[:8]} ({message})")
    return sha


def deployment_gpus(argo: Argo, ns: str, name: str) -> str | None:
    dep = argo.pc.apps.read_namespaced_deployment(name, ns)
    limits = dep.spec.template.spec.containers[0].resources.limits or {}
    return limits.get("nvidia.com/gpu")


# --------------------------------------------------------------------------- tests


def test_first_sync_establishes_the_crd_before_the_first_llmdeployment(argo: Argo) -> None:
    """One Application holding manifests/ and an LLMDeployment: the CRD (sync wave -1) is applied and
    Established before Argo CD applies the LLMDeployment (wave 0), and the first sync succeeds."""
    app = get_app(argo.pc, "fleet")
    op = (app.get("status") or {}).get("operationState") or {}
    assert op.get("phase") == "Succeeded", summary(app)
    # Timestamps have one-second resolution: the CRD's Established moment is not after the LLMDeployment's
    # creation (with no waves, a first sync fails its dry run: the kind is unknown).
    assert argo.crd_established <= argo.fleet_llm_created, (argo.crd_established, argo.fleet_llm_created)
    waves = {r["kind"]: r.get("syncPhase") for r in op["syncResult"]["resources"]}
    assert {"CustomResourceDefinition", "LLMDeployment", "Deployment"} <= set(waves), waves
    crd_annotations = yaml.safe_load((ROOT / "manifests" / "01-crds-llmdeployments.modelfleet.io.yaml").read_text())
    assert crd_annotations["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert argo.fleet.healths()[-1] == "Healthy", argo.fleet.table()
    assert resource_health(app, "LLMDeployment", "canary").get("status") == "Healthy", summary(app)


def test_health_progressing_healthy_degraded_from_argo(argo: Argo, ns: str) -> None:
    """Argo CD's health of the Application: Progressing while two models roll out, Healthy when both are
    Ready, Degraded (with the fit message) after a commit adds a model that cannot fit, Healthy after a
    commit removes it again (pruned)."""
    repo, watch = new_app(argo, ns, {"a.yaml": llm_yaml("small-a", replicas=2),
                                     "b.yaml": llm_yaml("small-b", replicas=2)})
    with watch:
        watch.wait(lambda a: health(a) == "Healthy" and sync_status(a) == "Synced", timeout=120,
                   what="both models Ready: Healthy")
        first = watch.healths()
        assert "Progressing" in first, f"never Progressing while rolling out:\n{watch.table()}"

        mark = watch.mark()
        repo.write({"big.yaml": llm_yaml("llama-70b", model={"uri": "hf://meta-llama/Llama-3.1-70B-Instruct",
                                                             "architecture": LLAMA_70B})})
        push_and_sync(argo, repo, watch, "add a 70B model on one GPU")
        app = watch.wait(lambda a: health(a) == "Degraded", timeout=60, what="Degraded for the model that does not fit")
        big = resource_health(app, "LLMDeployment", "llama-70b")
        assert big.get("status") == "Degraded", summary(app)
        assert "GiB" in big.get("message", ""), big  # the operator's Fits message, carried by the health check
        assert resource_health(app, "LLMDeployment", "small-a").get("status") == "Healthy", summary(app)

        repo.remove("big.yaml")
        push_and_sync(argo, repo, watch, "remove the 70B model")
        watch.wait(lambda a: health(a) == "Healthy", timeout=60, what="Healthy again after the prune")
        assert wait_for(lambda: argo.pc.kubectl("get", "llm", "llama-70b", "-n", ns, check=False).returncode != 0,
                        timeout=30, message="llama-70b pruned")
        print(f"\n{ns}: health transitions (Argo CD {ARGO_VERSION}):\n{watch.table()}\n"
              f"  after the unfit commit: {watch.healths(mark)}; message: {big.get('message')}")


def test_autoscaler_scales_while_the_application_stays_synced(argo: Argo, ns: str) -> None:
    """Queue-depth autoscaling under load (vLLM simulators scraped by Prometheus) scales the model up and
    back down; the Application stays Synced throughout, the LLMDeployment's spec and generation do not
    change, and Argo CD runs no sync operation (nothing to revert): no ignoreDifferences is configured."""
    pc, name = argo.pc, "queue"
    _, watch = new_app(argo, ns, {"q.yaml": llm_yaml(name, engine={"maxModelLen": 8192, "maxNumSeqs": SEQS},
                                                        autoscaling=AUTOSCALING)})
    with watch:
        app = watch.wait(lambda a: health(a) == "Healthy" and sync_status(a) == "Synced", timeout=120,
                         what="the autoscaled model Healthy and Synced")
        before = get_llm(pc, ns, name)
        op_started = app["status"]["operationState"]["startedAt"]
        history = len(app["status"].get("history") or [])
        mark = watch.mark()
        replicas_seen: list[tuple[float, int]] = []
        with SimFleet(pc, ns, name, max_num_seqs=SEQS, tokens_per_second=10.0) as fleet:
            fleet.wait_sims(1)
            fleet.wait_scraped(1)
            wait_for(lambda: condition(get_llm(pc, ns, name), "MetricsAvailable").get("status") == "True",
                     timeout=30, message="MetricsAvailable=True")
            t0 = time.monotonic()

            def replicas() -> int:
                n = int(pc.apps.read_namespaced_deployment(name, ns).spec.replicas)
                if not replicas_seen or replicas_seen[-1][1] != n:
                    replicas_seen.append((round(time.monotonic() - t0, 1), n))
                return n

            # 12 closed-loop clients on one replica of 2 slots: ~10 waiting, target 2 per replica.
            with Load(fleet, clients=12, seconds=120) as load:
                wait_for(lambda: replicas() >= 2, timeout=60, message=f"scale-up under load; {replicas_seen}")
                # Under load nothing may take the replicas back (Argo CD reverting would): watched 6 s.
                held = sample(replicas, seconds=6, interval=0.5)
                load.stop()
            wait_for(lambda: replicas() == 1, timeout=120, interval=0.5,
                     message=f"scale-down after the load; replicas seen {replicas_seen}")
        app = get_app(pc, ns)
        after = get_llm(pc, ns, name)
        print(f"\n{ns}: Deployment replicas (s after load start, n): {replicas_seen}\n"
              f"  Application transitions meanwhile ({watch.samples} samples in all):\n{watch.table()}")
        assert max(n for _, n in replicas_seen) >= 2, replicas_seen
        counts = [n for _, n in held]
        assert all(b >= a for a, b in itertools.pairwise(counts)), f"scaled back under load: {held}"
        syncs = {t[3] for t in watch.transitions[mark:]} | {sync_status(app)}
        assert syncs == {"Synced"}, f"the Application left Synced while autoscaling:\n{watch.table()}"
        assert after["spec"] == before["spec"], (before["spec"], after["spec"])
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert app["status"]["operationState"]["startedAt"] == op_started, "Argo CD ran a sync while autoscaling"
        assert len(app["status"].get("history") or []) == history, summary(app)


def test_git_commits_roll_out_prune_and_self_heal(argo: Argo, ns: str) -> None:
    """A commit changing spec.gpu.count rolls the model out on 2 GPUs per replica; a commit removing an
    LLMDeployment prunes it and the garbage collector its Deployment, Service and pods; a hand edit of an
    LLMDeployment's spec is reverted by self-heal to what git says."""
    pc = argo.pc
    repo, watch = new_app(argo, ns, {"m.yaml": llm_yaml("model", replicas=2),
                                     "gone.yaml": llm_yaml("gone", replicas=1)})
    with watch:
        watch.wait(lambda a: health(a) == "Healthy" and sync_status(a) == "Synced", timeout=120,
                   what="both models Healthy and Synced")
        assert deployment_gpus(argo, ns, "model") == "1"

        mark = watch.mark()
        t0 = time.monotonic()
        repo.write({"m.yaml": llm_yaml("model", replicas=2, gpu={"count": 2, "product": "NVIDIA-H100-80GB-HBM3"})})
        push_and_sync(argo, repo, watch, "model on 2 GPUs per replica")

        def rolled_out() -> bool:
            dep = pc.apps.read_namespaced_deployment("model", ns)
            st = dep.status
            return (deployment_gpus(argo, ns, "model") == "2" and st.updated_replicas == 2
                    and st.ready_replicas == 2 and (st.replicas or 0) == 2)

        # Argo CD says Progressing during the rollout and Healthy only once it is complete (checked the
        # moment Healthy is seen: the health check must not call a half-rolled-out model Healthy).
        watch.wait(lambda a: "Progressing" in watch.healths(mark) and health(a) == "Healthy", timeout=90,
                   what="Progressing, then Healthy after the rollout")
        dep = pc.apps.read_namespaced_deployment("model", ns)
        assert rolled_out(), f"Healthy before the rollout finished: {dep.status}\n{watch.table()}"
        args = dep.spec.template.spec.containers[0].args
        assert args[args.index("--tensor-parallel-size") + 1] == "2"
        rollout = f"{time.monotonic() - t0:.1f}s, health {watch.healths(mark)}"

        gone = get_llm(pc, ns, "gone")["metadata"]["uid"]
        repo.remove("gone.yaml")
        push_and_sync(argo, repo, watch, "remove gone")
        selector = "modelfleet.io/deployment=gone"

        def pruned() -> bool:
            return (pc.kubectl("get", "llm", "gone", "-n", ns, check=False).returncode != 0
                    and not pc.apps.list_namespaced_deployment(ns, label_selector=selector).items
                    and not pc.core.list_namespaced_service(ns, label_selector=selector).items
                    and not pc.core.list_namespaced_pod(ns, label_selector=selector).items)

        wait_for(pruned, timeout=90, message=f"llm/gone (uid {gone}) pruned with its Deployment, Service, pods")

        t1 = time.monotonic()
        pc.kubectl("-n", ns, "patch", "llm", "model", "--type=merge", "-p", '{"spec":{"engine":{"maxModelLen":4096}}}')
        wait_for(lambda: get_llm(pc, ns, "model")["spec"]["engine"]["maxModelLen"] == 8192, timeout=60,
                 message="self-heal reverting maxModelLen 4096 -> 8192 (git)")
        healed = time.monotonic() - t1
        watch.wait(lambda a: sync_status(a) == "Synced" and health(a) == "Healthy", timeout=60,
                   what="Synced and Healthy after self-heal")
        print(f"\n{ns}: gpu.count 1->2 commit to rolled out and Healthy: {rollout}; "
              f"hand edit reverted in {healed:.1f}s\n{watch.table()}")
