"""Queue-depth autoscaling for LLMDeployments."""
