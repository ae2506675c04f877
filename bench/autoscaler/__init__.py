"""Autoscaler benchmark: modelfleet's policy vs a KEDA/HPA-style baseline on simulated traces."""
