"""vLLM: supported versions, their flag and metric tables, argument rendering and memory model."""
