"""vllmsim: a small fake vLLM OpenAI server that stands in for GPU pods in tests.

    python e2e/vllmsim/server.py --port 8000 --model llama-8b --max-num-seqs 4 \
        --tokens-per-second 50 [--ttft 0.1] [--api-key KEY] [--vllm-version X.Y.Z] [--old-metric-names]

Each completion request occupies one of ``--max-num-seqs`` slots for
``ttft + max_tokens / tokens_per_second`` seconds; requests beyond that wait in a FIFO queue,
exactly what ``vllm:num_requests_waiting`` counts in vLLM. ``/metrics`` uses the metric names of
the chosen vLLM release, from the same generated table the operator reads
(``modelfleet.engines.vllm``), and vLLM's labels (``model_name``, and ``engine`` as vLLM V1 adds
it); ``--old-metric-names`` emits the deprecated KV-usage name (``vllm:gpu_cache_usage_perc``, which
vLLM 0.11 exports with ``--show-hidden-metrics-for-version=0.10``) instead of the current one.
KV-cache usage is simulated as running / max-num-seqs. The latency histograms
(``vllm:time_to_first_token_seconds``, ``vllm:inter_token_latency_seconds``,
``vllm:e2e_request_latency_seconds``, ``vllm:request_queue_time_seconds``) use vLLM 0.32.0's default
buckets: the queue time is the wait for a slot, the first token comes
``ttft + 1 / tokens_per_second`` after a slot is free (queue wait included, as in vLLM), each later
token ``1 / tokens_per_second`` after the previous one. ``vllm:num_preemptions_total`` stays 0 (the
simulator never runs out of KV cache), and ``vllm:request_success_total`` has every
``finished_reason`` vLLM pre-creates (requests end at max_tokens: ``length``). With ``--api-key``, ``/v1`` needs
``Authorization: Bearer KEY``; ``/health`` and ``/metrics`` never do (probes and Prometheus).

Why not llm-d-inference-sim: it is a Go module the module proxy here refuses (403).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from modelfleet.engines import vllm as vllm_engine

# Counters the simulator exports besides the scheduler gauges (names without `_total`).
SUCCESS, PROMPT_TOKENS, GENERATION_TOKENS = "vllm:request_success", "vllm:prompt_tokens", "vllm:generation_tokens"
PREEMPTIONS = "vllm:num_preemptions"
# Histograms (base names); the TTFT one is the table's `ttft` role.
ITL, E2E = "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds"
QUEUE = "vllm:request_queue_time_seconds"  # time in WAITING, on vLLM's request-latency buckets as in vLLM

# vLLM 0.32.0's default buckets (vllm/v1/metrics/buckets.py).
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
               80.0)
REQUEST_LATENCY_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                           240.0, 480.0, 960.0, 1920.0, 7680.0)
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")  # vLLM's FinishReason strings


@dataclass
class Histogram:
    """A Prometheus histogram: cumulative bucket counts, count and sum."""

    name: str
    help: str
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """Record ``value`` ``times`` times."""
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for i, upper in enumerate(self.buckets):
            if value <= upper:
                self.counts[i] += times
        self.count += times
        self.total += value * times

    def lines(self, lbl: str) -> list[str]:
        """The exposition lines, buckets in order and +Inf last, as prometheus_client writes them."""
        counts = self.counts or [0] * len(self.buckets)
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        out += [f'{self.name}_bucket{{{lbl},le="{upper}"}} {float(c)}' for upper, c in zip(self.buckets, counts,
                                                                                            strict=True)]
        out += [f'{self.name}_bucket{{{lbl},le="+Inf"}} {float(self.count)}',
                f"{self.name}_count{{{lbl}}} {float(self.count)}", f"{self.name}_sum{{{lbl}}} {self.total}"]
        return out


def _latency_histograms() -> dict[str, Histogram]:
    ttft = vllm_engine.metric_names(vllm_engine.DEFAULT_VERSION).ttft
    return {
        "ttft": Histogram(ttft, "Histogram of time to first token in seconds.", TTFT_BUCKETS),
        "itl": Histogram(ITL, "Histogram of inter-token latency in seconds.", ITL_BUCKETS),
        "e2e": Histogram(E2E, "Histogram of e2e request latency in seconds.", REQUEST_LATENCY_BUCKETS),
        "queue": Histogram(QUEUE, "Histogram of time spent in WAITING phase for request.", REQUEST_LATENCY_BUCKETS),
    }


@dataclass
class Engine:
    """The simulated scheduler: ``max_num_seqs`` slots and a FIFO queue."""

    model: str
    max_num_seqs: int
    tokens_per_second: float
    ttft: float = 0.0
    old_metric_names: bool = False
    vllm_version: str = vllm_engine.DEFAULT_VERSION
    running: int = 0
    queue: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    success: int = 0
    prompt_tokens: int = 0
    generation_tokens: int = 0
    preemptions: int = 0
    latency: dict[str, Histogram] = field(default_factory=_latency_histograms)

    async def run(self, max_tokens: int) -> None:
        """Wait for a slot (FIFO), hold it for the simulated duration, release it."""
        arrived = time.monotonic()
        if self.running >= self.max_num_seqs or self.queue:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self.queue.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self.queue:
                    self.queue.remove(fut)
                elif fut.done() and not fut.cancelled():
                    self._release()  # the slot was handed over just as the client left
                raise
        else:
            self.running += 1
        try:
            step = 1.0 / self.tokens_per_second
            wait = time.monotonic() - arrived
            await asyncio.sleep(self.ttft + max_tokens * step)
            self.success += 1
            self.generation_tokens += max_tokens
            self.latency["ttft"].observe(wait + self.ttft + step)
            self.latency["queue"].observe(wait)
            if max_tokens > 1:
                self.latency["itl"].observe(step, max_tokens - 1)
            self.latency["e2e"].observe(time.monotonic() - arrived)
        finally:
            self._release()

    def _release(self) -> None:
        while self.queue:
            nxt = self.queue.popleft()
            if not nxt.done():
                nxt.set_result(None)  # hand the slot over; running stays the same
                return
        self.running -= 1

    def metrics_text(self) -> str:
        """The Prometheus text exposition, in vLLM's names and label layout."""
        waiting = len(self.queue)
        kv = self.running / self.max_num_seqs
        lbl = f'engine="0",model_name="{self.model}"'
        names = vllm_engine.metric_names(self.vllm_version)
        table = vllm_engine.flag_table(self.vllm_version)
        for counter in (SUCCESS, PROMPT_TOKENS, GENERATION_TOKENS, PREEMPTIONS, *(h.name for h in
                                                                              self.latency.values())):
            if not table.has_metric(counter):
                raise RuntimeError(f"vLLM {self.vllm_version} has no {counter}: update the simulator")
        kv_name = vllm_engine.role_names("kv_cache_usage")[-1] if self.old_metric_names else names.kv_cache_usage
        lines = [
            f"# HELP {names.running} Number of requests in model execution batches.",
            f"# TYPE {names.running} gauge",
            f"{names.running}{{{lbl}}} {float(self.running)}",
            f"# HELP {names.waiting} Number of requests waiting to be processed.",
            f"# TYPE {names.waiting} gauge",
            f"{names.waiting}{{{lbl}}} {float(waiting)}",
            f"# HELP {kv_name} KV-cache usage. 1 means 100 percent usage.",
            f"# TYPE {kv_name} gauge",
            f"{kv_name}{{{lbl}}} {kv}",
            f"# HELP {PREEMPTIONS}_total Cumulative number of preemption from the engine.",
            f"# TYPE {PREEMPTIONS}_total counter",
            f"{PREEMPTIONS}_total{{{lbl}}} {float(self.preemptions)}",
            f"# HELP {SUCCESS}_total Count of successfully processed requests.",
            f"# TYPE {SUCCESS}_total counter",
            *(f'{SUCCESS}_total{{{lbl},finished_reason="{reason}"}} '
              f'{float(self.success if reason == "length" else 0)}' for reason in FINISH_REASONS),
            f"# HELP {PROMPT_TOKENS}_total Number of prefill tokens processed.",
            f"# TYPE {PROMPT_TOKENS}_total counter",
            f"{PROMPT_TOKENS}_total{{{lbl}}} {float(self.prompt_tokens)}",
            f"# HELP {GENERATION_TOKENS}_total Number of generation tokens processed.",
            f"# TYPE {GENERATION_TOKENS}_total counter",
            f"{GENERATION_TOKENS}_total{{{lbl}}} {float(self.generation_tokens)}",
        ]
        for hist in self.latency.values():
            lines += hist.lines(lbl)
        return "\n".join(lines) + "\n"


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)


def make_app(engine: Engine, api_key: str | None = None) -> web.Application:
    """The aiohttp application serving the OpenAI subset, /health and /metrics."""

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        bearer = request.headers.get("Authorization", "")
        if api_key and request.path.startswith("/v1") and bearer != f"Bearer {api_key}":
            return _error(401, "invalid or missing API key", "authentication_error")
        result: web.StreamResponse = await handler(request)
        return result

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="")

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=engine.metrics_text(), content_type="text/plain", charset="utf-8")

    async def models(_: web.Request) -> web.Response:
        card = {"id": engine.model, "object": "model", "created": int(time.time()), "owned_by": "vllm",
                "max_model_len": 8192}
        return web.json_response({"object": "list", "data": [card]})

    async def complete(request: web.Request, chat: bool) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object", "invalid_request_error")
        if body.get("model") not in (None, engine.model):
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        if body.get("stream"):
            return _error(400, "vllmsim does not stream", "invalid_request_error")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 16
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, "max_tokens must be a positive integer", "invalid_request_error")
        prompt = json.dumps(body.get("messages") if chat else body.get("prompt", ""))
        prompt_tokens = max(1, len(prompt) // 4)
        engine.prompt_tokens += prompt_tokens
        await engine.run(max_tokens)
        text = " ".join(["tok"] * max_tokens)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": max_tokens,
                 "total_tokens": prompt_tokens + max_tokens}
        if chat:
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "length"}
        else:
            choice = {"index": 0, "text": text, "finish_reason": "length", "logprobs": None}
        return web.json_response({
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": engine.model, "choices": [choice], "usage": usage,
        })

    async def completions(request: web.Request) -> web.Response:
        return await complete(request, chat=False)

    async def chat_completions(request: web.Request) -> web.Response:
        return await complete(request, chat=True)

    app = web.Application(middlewares=[auth])
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/chat/completions", chat_completions)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve until killed."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", required=True)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--tokens-per-second", type=float, default=100.0)
    p.add_argument("--ttft", type=float, default=0.0, help="seconds before the first token")
    p.add_argument("--api-key", default=None)
    p.add_argument("--vllm-version", choices=vllm_engine.SUPPORTED_VERSIONS, default=vllm_engine.DEFAULT_VERSION,
                   help="the vLLM release whose metric names /metrics uses (default: %(default)s)")
    p.add_argument("--old-metric-names", action="store_true",
                   help="emit the deprecated KV-usage name (vllm:gpu_cache_usage_perc) instead of the current one")
    p.add_argument("--shutdown-timeout", type=float, default=0.5,
                   help="seconds in-flight requests get to finish after SIGTERM")
    a = p.parse_args(argv)
    if a.max_num_seqs < 1 or a.tokens_per_second <= 0 or a.ttft < 0:
        p.error("--max-num-seqs >= 1, --tokens-per-second > 0 and --ttft >= 0 are required")
    engine = Engine(a.model, a.max_num_seqs, a.tokens_per_second, a.ttft, a.old_metric_names, a.vllm_version)
    web.run_app(make_app(engine, a.api_key), host=a.host, port=a.port, print=None,
                shutdown_timeout=a.shutdown_timeout)


if __name__ == "__main__":
    main()
