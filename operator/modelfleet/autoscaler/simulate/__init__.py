"""``modelfleet autoscale simulate``: replay a request trace through simulated vLLM replicas under
modelfleet's policy, the HPA, KEDA, a static fleet and an oracle, and compare cost and latency.

Modules by concern: ``trace`` (reading traces), ``replica`` (one vLLM replica), ``fleet`` (the
replay loop), ``baselines`` (HPA, KEDA, static), ``modelfleet_policy`` (the operator's policy),
``oracle`` (the floor), ``runs`` (the sweeps), ``report`` (rows, table, verdict).
"""
