"""modelfleet's autoscaler and real KEDA side by side on the simulator fleet (see run.py)."""
