"""Everything engine-specific lives under this package, behind one small interface.

Only modules here may name a vLLM flag, environment variable or metric, or model the
engine's GPU memory use; render, the planner, the autoscaler and the CRD generator ask it.
"""
