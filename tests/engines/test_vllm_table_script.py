"""scripts/vllm_table.py's source reading (pure parts; no vllm needed): metric names and imports."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vllm_table.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vllm_table_under_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TABLE = load_script()

# Shapes taken from vLLM's own metrics code (v1/metrics/loggers.py, parser/metrics.py, spec_decode/metrics.py).
LOGGERS = '''
class Logger:
    def __init__(self):
        g = self._gauge_cls(name="vllm:num_requests_waiting", documentation="...", labelnames=l)
        if self.show_hidden_metrics:
            old = self._gauge_cls(name="vllm:gpu_cache_usage_perc", documentation="...")
        else:
            other = self._gauge_cls(name="vllm:only_when_not_hidden", documentation="...")
        c = self._counter_cls(name="vllm:prompt_tokens_total", documentation="...")
        h = prometheus_client.Histogram(name="vllm:time_to_first_token_seconds", documentation="...")
'''
PARSER_METRICS = '''
_INVOCATIONS = "vllm:tool_call_parser_invocations_total"
counter = Counter(_INVOCATIONS, "Tool-call parser invocations.")
'''
TUPLES = '''
FIELDS = [("vllm:spec_decode_num_drafts", "Number of drafts.")]
QUERY = "rate(vllm:spec_decode_num_drafts_total[5m])"
'''


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (LOGGERS, [("vllm:num_requests_waiting", "gauge", False), ("vllm:gpu_cache_usage_perc", "gauge", True),
                   ("vllm:only_when_not_hidden", "gauge", False), ("vllm:prompt_tokens", "counter", False),
                   ("vllm:time_to_first_token_seconds", "histogram", False)]),
        (PARSER_METRICS, [("vllm:tool_call_parser_invocations", "counter", False)]),
        # A name in a table of tuples has no call to give its kind; PromQL text is not a name.
        (TUPLES, [("vllm:spec_decode_num_drafts", "unknown", False)]),
    ],
)
def test_metrics_in(source: str, expected: list[tuple[str, str, bool]]) -> None:
    found = [(m["name"], m["kind"], m["hidden"]) for m in TABLE.metrics_in(textwrap.dedent(source))]
    assert found == expected


@pytest.mark.parametrize(
    ("module", "source", "imported"),
    [
        ("vllm.v1.engine.async_llm", "from vllm.v1.metrics.loggers import StatLoggerFactory",
         {"vllm.v1.metrics.loggers", "vllm.v1.metrics.loggers.StatLoggerFactory"}),
        ("vllm.v1.metrics.ray_wrappers", "from .loggers import PrometheusStatLogger",
         {"vllm.v1.metrics.loggers", "vllm.v1.metrics.loggers.PrometheusStatLogger"}),
        ("vllm.v1.metrics.x", "from . import loggers", {"vllm.v1.metrics", "vllm.v1.metrics.loggers"}),
        # A docstring naming a module is not an import (0.11's metrics_types.py mentions vllm.engine.metrics).
        ("vllm.engine.metrics_types", '"""Defined here to avoid importing vllm.engine.metrics."""', set()),
    ],
)
def test_imports_of(module: str, source: str, imported: set[str]) -> None:
    assert TABLE.imports_of(module, source) == imported


def test_rendered_table_has_one_option_per_line() -> None:
    data = {"schema": 1, "options": [{"dest": "a"}, {"dest": "b"}], "metrics": []}
    text = TABLE.render(data)
    assert text.splitlines() == ['{', ' "schema": 1,', ' "options": [', '  {"dest": "a"},', '  {"dest": "b"}', ' ],',
                                 ' "metrics": []', '}']
