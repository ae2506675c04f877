"""HPA and KEDA as the Kubernetes docs describe them, against hand computations."""

from __future__ import annotations

import pytest

from modelfleet.autoscaler.simulate.baselines import (
    Hpa,
    HpaBehavior,
    Keda,
    external_average_replicas,
    pods_metric_replicas,
)
from modelfleet.autoscaler.simulate.fleet import FleetView, PodSample


@pytest.mark.parametrize(
    ("values", "missing", "current", "target", "expected", "why"),
    [
        ([10.0, 10.0], 0, 2, 4.0, 5, "ceil(2 x 10/4) = ceil(5.0)"),
        ([4.2, 4.2], 0, 2, 4.0, 2, "4.2/4 = 1.05: inside the 10 % tolerance"),
        ([4.5, 4.5], 0, 2, 4.0, 3, "4.5/4 = 1.125: ceil(2 x 1.125) = 3"),
        ([1.0, 1.0, 1.0], 0, 3, 4.0, 1, "ceil(3 x 0.25) = 1"),
        ([12.0, 12.0], 2, 4, 4.0, 6, "scale-up: 2 starting pods count as 0 -> 24/4 pods/4 = 1.5 -> ceil(4 x 1.5)"),
        ([1.0, 1.0], 2, 4, 4.0, 3, "scale-down: missing pods count as the target -> (1+1+4+4)/4/4 -> ceil(2.5)"),
        ([5.0, 5.0], 2, 4, 4.0, 4, "5/4 > 1 but with 2 pods at 0 the ratio is 0.625 < 1: direction flips, hold"),
    ],
)
def test_pods_metric_replica_calculator(values: list[float], missing: int, current: int, target: float,
                                        expected: int, why: str) -> None:
    assert pods_metric_replicas(values, missing, current, target) == expected, why


@pytest.mark.parametrize(
    ("total", "current", "target", "expected"),
    [
        (50.0, 2, 5.0, 10),  # ceil(50 / 5)
        (31.0, 6, 5.0, 6),  # 31 / (5 x 6) = 1.03: within tolerance
        (0.0, 4, 5.0, 0),  # KEDA's metric at 0 asks for 0 (the HPA then clamps to minReplicas)
        (26.0, 4, 5.0, 6),  # 26 / 20 = 1.3 -> ceil(5.2)
    ],
)
def test_external_average_value_is_keda_threshold(total: float, current: int, target: float, expected: int) -> None:
    assert external_average_replicas(total, current, target) == expected


def test_default_behavior_scale_up_limit_and_scale_down_window() -> None:
    b = HpaBehavior(min_replicas=1, max_replicas=20)
    assert b.apply(10, 2, 0.0) == 6  # at most max(2 x 2, 2 + 4) = 6 per 15 s
    assert b.apply(20, 6, 15.0) == 12  # next period: max(2 x 6, 6 + 4) = 12
    b = HpaBehavior(min_replicas=1, max_replicas=20)
    assert b.apply(1, 4, 0.0) == 4  # the window starts with the current 4
    assert b.apply(1, 4, 150.0) == 4  # 4 is still in the last 300 s
    assert b.apply(1, 4, 301.0) == 1  # all recommendations of the last 300 s are 1


def _view(samples: list[PodSample], replicas: int, now: float = 0.0) -> FleetView:
    return FleetView(now=now, replicas=replicas, ready=len(samples), starting=replicas - len(samples),
                     unready_seconds=None, samples=tuple(samples), startup_seconds=None)


def test_hpa_and_keda_read_their_metric() -> None:
    pods = [PodSample(waiting=6, running=14, kv_usage=0.9), PodSample(waiting=4, running=16, kv_usage=0.9)]
    # waiting+running averages 20 a pod; target 10 -> ceil(2 x 2) = 4
    assert Hpa("waiting+running", 10.0, 1, 10).desired(_view(pods, 2)) == 4
    # waiting alone averages 5 a pod; target 4 -> ceil(2 x 1.25) = 3
    assert Hpa("waiting", 4.0, 1, 10).desired(_view(pods, 2)) == 3
    # KEDA: sum(waiting + running) = 40, threshold 15 -> ceil(40 / 15) = 3
    assert Keda("waiting+running", 15.0, 1, 10).desired(_view(pods, 2)) == 3
    assert Keda("waiting", 2.0, 1, 10).desired(_view(pods, 2)) == 5  # ceil(10 / 2)
