"""modelfleet's own policy (``autoscaler.policy.decide``) as a simulated autoscaler.

It sees what the operator sees: the scraped sums (waiting, running) and average KV usage of the
pods Prometheus has scraped, the Deployment's replicas, ready and starting pods and the oldest
starting pod's age (from pod creation times), the planner's KV capacity per replica, and the
startup time it observed on earlier pods. Its state goes through a status-shaped round trip
every cycle, as in the operator.
"""

from __future__ import annotations

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.policy import Observation, PolicyState, Recommendation, ReplicaCapacity, decide
from modelfleet.autoscaler.simulate.fleet import FleetView

#: The operator's default cycle (settings.autoscale_interval_seconds).
DEFAULT_PERIOD_SECONDS = 15.0


class Modelfleet:
    """The operator's policy with the LLMDeployment's autoscaling spec."""

    name = "modelfleet"

    def __init__(self, spec: AutoscalingSpec, max_num_seqs: int, kv_cache_tokens: int | None,
                 period: float = DEFAULT_PERIOD_SECONDS) -> None:
        self.spec, self.max_num_seqs, self.kv_tokens, self.period = spec, max_num_seqs, kv_cache_tokens, period
        self.setting = (f"targetQueueDepth {spec.target_queue_depth:g}, "
                        f"scale-down window {spec.scale_down_stabilization_seconds}s")
        self.status: dict[str, object] | None = None

    def desired(self, view: FleetView) -> int:
        """One operator cycle."""
        s = view.samples
        obs = Observation(
            waiting=float(sum(x.waiting for x in s)) if s else None,
            running=float(sum(x.running for x in s)) if s else None,
            kv_cache_usage=sum(x.kv_usage for x in s) / len(s) if s else None,
            ready_replicas=view.ready, replicas=view.replicas, pods_reporting=len(s),
            unready_seconds=view.unready_seconds)
        cap = ReplicaCapacity(kv_cache_tokens=self.kv_tokens, startup_seconds=view.startup_seconds)
        if self.status is None:
            # The fleet was serving before the trace: the window starts at the current replicas.
            self.status = PolicyState((Recommendation(view.now, view.replicas),)).to_status()
        d = decide(self.spec, obs, PolicyState.from_status(self.status), view.now, self.max_num_seqs, capacity=cap)
        self.status = d.state.to_status()
        return d.desired_replicas
