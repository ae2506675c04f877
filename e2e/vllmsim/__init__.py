"""vllmsim: a fake vLLM server for tests (see server.py), and helpers to run it (harness.py)."""
