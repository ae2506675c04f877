"""modelfleet: a Kubernetes operator for fleets of self-hosted vLLM servers."""

__version__ = "0.1.0"
