"""The PromQL selector from MODELFLEET_PROMETHEUS_SELECTOR, against a real Prometheus.

A shared Thanos/Mimir holds the same (namespace, deployment) from several clusters, and a pod
scraped twice (a PodMonitor plus annotation discovery) has two series: without a selector both
count; with `cluster="prod"` only one does.
"""

from __future__ import annotations

from e2e.vllmsim.harness import Prom, poll, sim_target, vllmsim
from test_metrics import load

from modelfleet.autoscaler.metrics import PrometheusSource, build_query, scoped_selector
from modelfleet.settings import parse_selector


def test_scoped_selector_keeps_the_deployment_matcher() -> None:
    assert scoped_selector() == 'modelfleet_io_deployment!=""'
    sel = scoped_selector(parse_selector('job="vllm", cluster="prod"'))
    assert sel == 'modelfleet_io_deployment!="",job="vllm",cluster="prod"'
    assert 'vllm:num_requests_waiting{modelfleet_io_deployment!="",job="vllm",cluster="prod"}' in build_query(sel)


def test_selector_stops_double_counting(prometheus: Prom) -> None:
    with vllmsim(model="a", max_num_seqs=1, tokens_per_second=20) as sim:
        # The same simulator as two series: once as "prod", once as another cluster's (or a second scrape's).
        prod = sim_target(sim, "ns1", "a", "a-1")
        prod["labels"]["cluster"] = "prod"
        other = sim_target(sim, "ns1", "a", "a-1")
        other["labels"]["cluster"] = "staging"
        prometheus.set_targets([prod, other])
        load(sim, 3, max_tokens=20_000)  # max_num_seqs=1: 1 running, 2 waiting, for the whole test
        everything = PrometheusSource(prometheus.url, timeout=5, retries=1)
        scoped = PrometheusSource(prometheus.url, timeout=5, retries=1,
                                  selector=scoped_selector(parse_selector('cluster="prod"')))

        def both_seen() -> bool:
            got = everything.fetch().get(("ns1", "a"))
            return bool(got and got.waiting == 4 and got.running == 2)

        # Without a selector: twice the queue (2 waiting counted as 4; pods are counted by instance).
        poll(both_seen, 30, "both series scraped, the queue counted twice")
        got = scoped.fetch()[("ns1", "a")]
        assert (got.pods, got.waiting, got.running) == (1, 2.0, 1.0)
