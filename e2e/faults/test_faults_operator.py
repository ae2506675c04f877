"""Faults of the operator itself: SIGKILL at random moments during rollouts, spec changes and scaling;
two operators at once (Lease leader election) and the leader killed.

Runs on the fault suite's private cluster (faultkit.fault_cluster); run with ``-s`` for the figures.
The chaos test's RNG seed is printed; MODELFLEET_FAULT_SEED=<seed> replays the same schedule.
"""

from __future__ import annotations

import itertools
import os
import random
import statistics
import threading
import time
from contextlib import ExitStack
from typing import Any

import pytest

from autoscale_harness import Load, SimFleet, prom_value, selector
from faultkit import (
    AUTOSCALE,
    Figure,
    Intended,
    Operators,
    Watch,
    apply,
    count_lost_duplicated,
    lease_holder,
    llm_body,
    make_namespace,
    record,
    wait_converged,
)
from helpers import wait_for
from private_cluster import PrivateCluster
from test_operator import GROUP, PLURAL, VERSION

pytestmark = pytest.mark.cluster

KILLS = 20
FIXED = [f"f{i:02d}" for i in range(18)]  # replicas from spec; 2 of them deleted during the chaos
AUTO = ["a0", "a1"]  # autoscaled on queue depth, with simulators and load
NEW = ["n0", "n1"]  # created during the chaos
WINDOW = 20  # scaleDownStabilizationSeconds of the autoscaled ones
AUTOSCALING = {
    "enabled": True, "minReplicas": 1, "maxReplicas": 3, "targetQueueDepth": 2,
    "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": WINDOW,
    "maxScaleUpStep": 4, "maxScaleDownStep": 4, "tolerance": 0.1,
}
SCRAPE = 2.0  # the fault cluster's Prometheus scrape interval (e2e/localcluster/config.py)
# A restarted pod keeps its name: the same identity, a short Lease so a killed holder is replaced fast.
CHAOS_OPERATOR = {"lease_duration_seconds": "3", "lease_renew_deadline_seconds": "2", "lease_retry_seconds": "1"}


def patch_spec(pc: PrivateCluster, ns: str, name: str, spec: dict[str, Any]) -> None:
    pc.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, {"spec": spec})


class SpecDriver:
    """Changes the fixed LLMDeployments' spec at random moments (seeded) and keeps what is intended."""

    def __init__(self, pc: PrivateCluster, ns: str, rng: random.Random) -> None:
        self.pc, self.ns, self.rng = pc, ns, rng
        self.intended = {n: Intended(replicas=1, max_model_len=8192) for n in FIXED}
        self.actions: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._pending = ["delete f16", "create n0", "delete f17", "create n1"]

    def _planned(self) -> None:
        verb, name = self._pending.pop(0).split()
        if verb == "delete":
            self.pc.kubectl("delete", "llm", name, "-n", self.ns, "--wait=false")
            with self._lock:
                del self.intended[name]
        else:
            apply(self.pc, self.ns, llm_body(name, replicas=1))
            with self._lock:
                self.intended[name] = Intended(replicas=1, max_model_len=8192)
        self.actions.append(f"{verb} {name}")

    def _act(self) -> None:
        if self._pending and self.rng.random() < 0.12:
            self._planned()
            return
        with self._lock:
            name = self.rng.choice(sorted(self.intended))
            want = self.intended[name]
        if self.rng.random() < 0.55:
            replicas = 3 - want.replicas  # 1 <-> 2
            patch_spec(self.pc, self.ns, name, {"replicas": replicas})
            with self._lock:
                self.intended[name] = Intended(replicas, want.max_model_len)
            self.actions.append(f"scale {name} {replicas}")
        else:
            mml = self.rng.choice([m for m in (4096, 8192, 16384) if m != want.max_model_len])
            patch_spec(self.pc, self.ns, name, {"engine": {"maxModelLen": mml}})
            with self._lock:
                self.intended[name] = Intended(want.replicas, mml)
            self.actions.append(f"maxModelLen {name} {mml}")

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(0.3, 1.2)):  # the moment of the next change
            try:
                self._act()
            except Exception as e:
                self.errors.append(f"{type(e).__name__}: {str(e)[:300]}")

    def __enter__(self) -> SpecDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        while self._pending:  # the planned creations and deletions happen in any case
            self._planned()


def replicas_of(pc: PrivateCluster, ns: str, names: list[str]) -> tuple[int, ...]:
    # A read timeout: a Watch thread parked on a dead connection would stop sampling without a word.
    return tuple(int(pc.apps.read_namespaced_deployment(n, ns, _request_timeout=10).spec.replicas) for n in names)


def decreases(values: list[tuple[float, tuple[int, ...]]]) -> list[tuple[float, tuple[int, ...], tuple[int, ...]]]:
    """(time, before, after) of every sample where some Deployment's replicas went down."""
    out = []
    for (_, a), (t, b) in itertools.pairwise(values):
        if any(y < x for x, y in zip(a, b, strict=True)):
            out.append((t, a, b))
    return out


def test_operator_sigkilled_20_times_during_rollout_spec_changes_and_scaling(fc: PrivateCluster, ops: Operators) -> None:  # noqa: E501
    seed = int(os.environ.get("MODELFLEET_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nCHAOS SEED {seed} (MODELFLEET_FAULT_SEED={seed} replays the schedule)")
    rng = random.Random(seed)  # kill moments
    ns = make_namespace(fc, "chaos")
    settings = {**CHAOS_OPERATOR, "lease_namespace": ns}
    apply(fc, ns, *(llm_body(n, replicas=1) for n in FIXED),
          *(llm_body(n, engine={"maxModelLen": 8192, "maxNumSeqs": 2}, autoscaling=AUTOSCALING) for n in AUTO))
    to_leader: list[float] = []  # kill -> the next life holds the Lease (acts again)
    to_round: list[float] = []  # kill -> the next life finished a resync round (when it lived that long)
    with ExitStack() as stack:
        fleets = [stack.enter_context(SimFleet(fc, ns, n, max_num_seqs=2, tokens_per_second=10.0)) for n in AUTO]
        # 14 closed-loop clients on at most 3 replicas of 2 slots: the queue stays above the target,
        # so every recommendation is 3 (maxReplicas) while the load runs: no scale-down is allowed.
        loads = [stack.enter_context(Load(f, clients=14, seconds=600)) for f in fleets]
        auto_watch = stack.enter_context(Watch(lambda: replicas_of(fc, ns, AUTO), interval=0.25))
        with SpecDriver(fc, ns, random.Random(seed + 1)) as driver:
            t_kill: float | None = None
            for _ in range(KILLS - 1):  # the last kill falls in the scale-down window, below
                op = ops.start("chaos", **settings)
                # Kill an acting leader: wait until this life holds the Lease, then draw the moment.
                wait_for(lambda: op.metric("modelfleet_leader") == 1, timeout=30, interval=0.05,  # noqa: B023
                         message=f"life {len(ops.started)} leading; log:\n{op.log_tail()}")
                if t_kill is not None:
                    to_leader.append(time.monotonic() - t_kill)
                life = rng.uniform(0.0, 2.5)  # the moment of the fault: this life leads `life` seconds
                t_start = time.monotonic()
                seen_round = False
                while time.monotonic() - t_start < life:  # watch the new life's progress until its kill
                    if not seen_round and t_kill is not None and op.metric("modelfleet_resync_rounds_total") >= 1:
                        to_round.append(time.monotonic() - t_kill)
                        seen_round = True
                    time.sleep(0.05)
                t_kill = ops.kill(op)
        assert not driver.errors, driver.errors

        op = ops.start("chaos", **settings)
        t_final = time.monotonic()
        intended = dict(driver.intended)
        intended.update({n: Intended(replicas=3, max_model_len=8192) for n in AUTO})
        wait_converged(fc, ns, intended, timeout=90, context=op.log_tail(80) + f"\nactions: {driver.actions}"
                       f"\nautoscaled replicas went down under load: {decreases(auto_watch.values)}")
        t_conv = time.monotonic() - t_final
        assert not decreases(auto_watch.values), (
            f"scale-down under constant load (the window forbids any): {decreases(auto_watch.values)}")

        # The 20th kill: inside the scale-down window after the load stops.
        for ld in loads:
            ld.stop()
        t_stop = time.monotonic()
        kill_at = t_stop + rng.uniform(4, 8)
        url = str(fc.prometheus_url)
        wait_for(lambda: all(prom_value(url, f"sum(vllm:num_requests_waiting{selector(ns, n)})") == 0 for n in AUTO),
                 timeout=30, message="the queues drained in Prometheus")
        wait_for(lambda: time.monotonic() >= kill_at, timeout=15, message="the 20th kill moment")  # fault timing
        ops.kill(op)
        op = ops.start("chaos", **settings)
        # Earliest legal scale-down (by hand): the last cycle that saw the full load ran at most one
        # autoscale interval plus one scrape interval (+0.5 s for the query) before the load stopped;
        # its recommendation (3) rules for WINDOW seconds after that.
        earliest = t_stop - AUTOSCALE - SCRAPE - 0.5 + WINDOW
        wait_for(lambda: replicas_of(fc, ns, AUTO) == (1, 1), timeout=WINDOW + 60, interval=0.25,
                 message=f"the autoscaled ones back to 1 after the window; log:\n{op.log_tail()}")
        # The sampler must have seen it too before it stops: when both scale down at once, this poll can
        # see (1, 1) first, and stopping the sampler then would lose the very decrease it is there for.
        wait_for(lambda: bool(auto_watch.values) and auto_watch.values[-1][1] == (1, 1), timeout=15, interval=0.1,
                 message=f"the replica sampler sees (1, 1): {len(auto_watch.values)} samples, last "
                         f"{auto_watch.values[-3:]}, read errors {auto_watch.errors[-5:]}")
        requests_ok = sum(ld.ok for ld in loads)
    downs = decreases(auto_watch.values)
    assert downs, (f"no scale-down seen in {len(auto_watch.values)} samples (last: {auto_watch.values[-3:]}); "
                   f"read errors: {auto_watch.errors[-5:]}")
    first_down = downs[0][0]
    assert first_down >= earliest, (
        f"scale-down {first_down - t_stop:.1f} s after the load stopped; the {WINDOW} s window forbids it before "
        f"{earliest - t_stop:.1f} s (operator killed and restarted {kill_at - t_stop:.1f} s after the stop)")
    intended.update({n: Intended(replicas=1, max_model_len=8192) for n in AUTO})
    wait_converged(fc, ns, intended, timeout=60, context=op.log_tail())
    lost, dup = count_lost_duplicated(fc, ns, sorted(intended))
    assert (lost, dup) == (0, 0)
    assert not {"f16", "f17"} & set(intended) and {"n0", "n1"} <= set(intended)
    print(f"\nCHAOS: {len(driver.actions)} spec actions ({driver.actions[:6]} ...); load {requests_ok} ok "
          f"requests; first scale-down {first_down - t_stop:.1f} s after the load stopped (earliest legal "
          f"{earliest - t_stop:.1f} s; 20th kill at {kill_at - t_stop:.1f} s)")
    record(Figure(
        "operator SIGKILL (chaos; converge = kill -> next life leading)", injected=KILLS, converge=to_leader,
        lost=lost, duplicated=dup,
        notes=f"seed {seed}; kill -> next life leading: median {statistics.median(to_leader):.1f} s, max "
              f"{max(to_leader):.1f} s; kill -> its first resync round: median "
              f"{statistics.median(to_round) if to_round else float('nan'):.1f} s ({len(to_round)} of "
              f"{len(to_leader)} lives got that far); final convergence {t_conv:.1f} s after the last restart; "
              f"{len(driver.actions)} spec changes; no forbidden scale-down"))


def test_two_operators_one_acts_and_the_standby_takes_over(fc: PrivateCluster, ops: Operators) -> None:
    ns = make_namespace(fc, "leader")
    lease = f"mf-{ns}"[:63]
    a = ops.start("op-a", lease_namespace=ns, lease_name=lease)
    wait_for(lambda: lease_holder(fc, ns, lease) == "op-a", timeout=30,
             message=f"op-a holding Lease {ns}/{lease}; log:\n{a.log_tail()}")
    b = ops.start("op-b", lease_namespace=ns, lease_name=lease)
    names = ["l0", "l1", "l2"]
    apply(fc, ns, *(llm_body(n, replicas=1) for n in names))
    intended = {n: Intended(replicas=1, max_model_len=8192) for n in names}
    wait_converged(fc, ns, intended, timeout=90, context=a.log_tail())
    assert lease_holder(fc, ns, lease) == "op-a"
    writes_a, writes_b = a.kube_writes(), b.kube_writes()
    assert writes_a > 0 and writes_b == 0, f"exactly one must act: op-a wrote {writes_a}, op-b {writes_b}"
    assert b.metric("modelfleet_resync_rounds_total") == 0, "the standby ran resync rounds"

    t_kill = ops.kill(a)
    patch_spec(fc, ns, "l0", {"replicas": 2})
    intended["l0"] = Intended(replicas=2, max_model_len=8192)
    wait_for(lambda: lease_holder(fc, ns, lease) == "op-b", timeout=60, interval=0.1,
             message=f"op-b taking the Lease; log:\n{b.log_tail()}")
    t_lease = time.monotonic() - t_kill
    wait_for(lambda: fc.apps.read_namespaced_deployment("l0", ns).spec.replicas == 2, timeout=60, interval=0.1,
             message=f"op-b acting on l0; log:\n{b.log_tail()}")
    t_act = time.monotonic() - t_kill
    t_conv = wait_converged(fc, ns, intended, timeout=60, context=b.log_tail()) + t_act
    assert b.kube_writes() > 0
    lost, dup = count_lost_duplicated(fc, ns, names)
    assert (lost, dup) == (0, 0)
    record(Figure("leader SIGKILLed (2 operators)", injected=1, converge=[t_conv], lost=lost, duplicated=dup,
                  notes=f"failover gap: Lease taken {t_lease:.1f} s after the kill, first action {t_act:.1f} s; "
                        f"standby writes before the kill: {writes_b:g}"))
