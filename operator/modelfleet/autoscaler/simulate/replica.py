"""A simulated vLLM replica: KV-cache admission, prefill and batched decode, cold start.

The numbers a replica runs on (:class:`ReplicaModel`) come from three places:

* **The planner** (``planner.plan_spec``) for this spec and GPU: KV-cache capacity in tokens,
  weight bytes, KV bytes per token, tensor-parallel size; ``engine.maxNumSeqs`` caps the batch.
* **A roofline with published efficiencies** for time. A decode step reads the weights and the
  batch's KV cache once and is memory-bound::

      step(b, ctx) = max((weights + ctx x kv_bytes_per_token) / (tp x HBM bandwidth x 0.77),
                         2 x params x b / (tp x dense BF16 FLOPS x 0.5))

  0.77 is the share of the memory-bandwidth ceiling vLLM reaches in decode, measured for
  Llama-3.1-8B on an A100 40GB (75 tokens/s at one request, "roughly 77 % of the GPU's
  memory-bandwidth ceiling": John Musgrave, "vLLM throughput-latency sweep on NVIDIA A100",
  vLLM 0.23). Prefill is compute-bound: ``prompt x 2 x params / (tp x FLOPS x 0.5)`` seconds;
  the 0.5 model-FLOPs utilisation is an assumption (no published vLLM prefill figure at hand),
  see docs/autoscaling.md. Bandwidth and FLOPS per GPU are NVIDIA's datasheet figures
  (:data:`GPU_PERF`).
* **A cold start** before a new replica serves: image pull (a fixed number of seconds: the
  image is the same for every model) + weights / load bandwidth + a fixed engine start
  (CUDA graphs, compilation, warm-up).

Scheduling inside a replica follows vLLM's FCFS scheduler: a request is admitted when a batch
slot is free (``running < maxNumSeqs``) *and* the KV cache has room for its prompt + output
tokens; otherwise it waits, and so do the ones behind it. Its first token comes out of its
prefill, so TTFT = queue wait + the prefills ahead of it in the step + its own prefill. Each
tick's GPU time goes first to prefills (chunked prefill gives them priority), the rest to decode
steps; every running sequence advances by one token per step.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

from modelfleet.api import LLMDeploymentSpec
from modelfleet.autoscaler.simulate.trace import Request
from modelfleet.planner import FitReport, catalog, plan_spec
from modelfleet.planner.gpus import lookup_gpu

#: Share of the HBM bandwidth ceiling vLLM decode reaches (published A100 measurement, above).
DECODE_BANDWIDTH_EFFICIENCY = 0.77
#: Model-FLOPs utilisation of prefill (assumption, stated in the docs).
PREFILL_FLOPS_EFFICIENCY = 0.5
#: Seconds to pull the vLLM image onto a node that does not have it (~10 GB at ~200 MB/s).
DEFAULT_IMAGE_PULL_SECONDS = 50.0
#: Weight load bandwidth from the model cache/PVC to GPU memory, GB/s.
DEFAULT_LOAD_GBPS = 1.0
#: Engine start: process, CUDA context, graph capture and compilation, warm-up.
DEFAULT_ENGINE_START_SECONDS = 40.0


@dataclass(frozen=True)
class GpuPerf:
    """Datasheet figures of one GPU (dense, no sparsity)."""

    hbm_tb_per_s: float
    bf16_tflops: float


#: NVIDIA datasheets: memory bandwidth and dense BF16 tensor throughput.
GPU_PERF: dict[str, GpuPerf] = {
    "NVIDIA-H100-80GB-HBM3": GpuPerf(3.35, 989.0),
    "NVIDIA-H100-PCIe": GpuPerf(2.0, 756.0),
    "NVIDIA-H100-NVL": GpuPerf(3.9, 835.0),
    "NVIDIA-H200": GpuPerf(4.8, 989.0),
    "NVIDIA-A100-SXM4-80GB": GpuPerf(2.039, 312.0),
    "NVIDIA-A100-80GB-PCIe": GpuPerf(1.935, 312.0),
    "NVIDIA-A100-SXM4-40GB": GpuPerf(1.555, 312.0),
    "NVIDIA-A100-PCIE-40GB": GpuPerf(1.555, 312.0),
    "NVIDIA-L40S": GpuPerf(0.864, 362.0),
    "NVIDIA-L4": GpuPerf(0.3, 121.0),
    "NVIDIA-A10G": GpuPerf(0.6, 70.0),
    "NVIDIA-A10": GpuPerf(0.6, 125.0),
}


class ModelError(Exception):
    """The spec cannot be simulated (does not fit, or its GPU or model is unknown)."""


@dataclass(frozen=True)
class ReplicaModel:
    """What one replica can do; times in seconds, sizes in tokens or bytes."""

    kv_tokens: int
    max_num_seqs: int
    weights_bytes: float
    kv_bytes_per_token: float
    parameters: float
    bandwidth: float  # effective bytes/s of the whole replica (all tensor-parallel GPUs)
    flops: float  # effective FLOP/s of the whole replica
    cold_start: float
    max_model_len: int | None = None

    def admissible(self, tokens: int) -> bool:
        """Whether vLLM would take a request of ``tokens`` prompt + output tokens at all."""
        return tokens <= self.kv_tokens and (self.max_model_len is None or tokens <= self.max_model_len)

    def prefill_seconds(self, tokens: int) -> float:
        """GPU time to prefill ``tokens`` prompt tokens."""
        return tokens * 2.0 * self.parameters / self.flops

    def step_seconds(self, batch: int, context_tokens: float) -> float:
        """One decode step for ``batch`` sequences holding ``context_tokens`` tokens of KV cache."""
        memory = (self.weights_bytes + context_tokens * self.kv_bytes_per_token) / self.bandwidth
        return max(memory, 2.0 * self.parameters * batch / self.flops)

    def concurrency(self, tokens_per_request: float) -> int:
        """Sequences that run at once for requests needing ``tokens_per_request`` KV tokens each."""
        return max(1, min(self.max_num_seqs, int(self.kv_tokens // max(1.0, tokens_per_request))))

    @classmethod
    def from_spec(cls, spec: LLMDeploymentSpec, *, image_pull_seconds: float = DEFAULT_IMAGE_PULL_SECONDS,
                  load_gbps: float = DEFAULT_LOAD_GBPS,
                  engine_start_seconds: float = DEFAULT_ENGINE_START_SECONDS) -> ReplicaModel:
        """The model of one replica of ``spec``; ModelError with the planner's reason when it does not fit."""
        report: FitReport = plan_spec(spec)
        if not report.fits or report.kv_cache_tokens is None or report.weights_bytes is None:
            why = "; ".join(report.reasons) or "the planner could not size it"
            raise ModelError(f"the LLMDeployment does not fit its GPUs: {why}")
        product = spec.gpu.product or ""
        gpu = lookup_gpu(product) if product else None
        perf = GPU_PERF.get(gpu.product) if gpu else None
        if perf is None:
            known = ", ".join(sorted(GPU_PERF))
            raise ModelError(f"no performance figures for gpu.product {product or '(unset)'!r}; known: {known}")
        arch = spec.model.architecture
        params = float(arch.parameters) if arch is not None else 0.0
        if not params:
            known_arch = catalog.lookup(spec.model.uri)
            params = float(known_arch.parameters) if known_arch else report.weights_bytes / 2.0
        tp = spec.gpu.count
        return cls(
            kv_tokens=report.kv_cache_tokens,
            max_num_seqs=spec.engine.max_num_seqs,
            weights_bytes=float(report.weights_bytes),
            kv_bytes_per_token=float(report.kv_cache_bytes_per_token or 0),
            parameters=params,
            bandwidth=tp * perf.hbm_tb_per_s * 1e12 * DECODE_BANDWIDTH_EFFICIENCY,
            flops=tp * perf.bf16_tflops * 1e12 * PREFILL_FLOPS_EFFICIENCY,
            cold_start=image_pull_seconds + report.weights_bytes / (load_gbps * 1e9) + engine_start_seconds,
            max_model_len=report.max_model_len,
        )


class Replica:
    """One pod's state during a simulation; :meth:`tick` advances it by ``dt`` seconds."""

    __slots__ = (
        "admit_sum",
        "busy_until",
        "created",
        "draining",
        "kv_reserved",
        "model",
        "progress",
        "prompt_sum",
        "queue",
        "ready_at",
        "running",
    )

    def __init__(self, model: ReplicaModel, created: float, ready_at: float) -> None:
        self.model = model
        self.created = created
        self.ready_at = ready_at
        self.draining = False
        self.queue: deque[Request] = deque()
        # (progress at which it finishes, KV tokens reserved, prompt tokens, progress at admission)
        self.running: list[tuple[float, int, int, float]] = []
        self.progress = 0.0  # decode steps done since creation (every running sequence moved this many tokens)
        self.kv_reserved = 0
        self.prompt_sum = 0
        self.admit_sum = 0.0
        self.busy_until = 0.0  # prefill work that spilled over from the previous tick

    def load(self) -> int:
        """Requests on this replica (waiting + running): what a least-request balancer compares."""
        return len(self.queue) + len(self.running)

    def idle(self) -> bool:
        """Nothing waiting or running."""
        return not self.queue and not self.running

    def context_tokens(self) -> float:
        """KV tokens the running sequences hold now (prompt + tokens generated so far)."""
        return self.prompt_sum + len(self.running) * self.progress - self.admit_sum

    def tick(self, t: float, dt: float, ttfts: list[float]) -> int:
        """Admit, prefill and decode during ``[t, t + dt)``; TTFTs go to ``ttfts``; returns completions."""
        m = self.model
        end = t + dt
        start = max(t, self.busy_until)
        cursor = start
        spent = 0.0
        queue, running = self.queue, self.running
        while queue and cursor < end and len(running) < m.max_num_seqs:
            req = queue[0]
            need = req.prompt_tokens + req.output_tokens
            if self.kv_reserved + need > m.kv_tokens:
                break  # FCFS: the head waits for KV room, and everything behind it waits too
            queue.popleft()
            prefill = m.prefill_seconds(req.prompt_tokens)
            cursor = max(cursor, req.t) + prefill
            spent += prefill
            ttfts.append(cursor - req.t)
            # The first output token comes from the prefill; output - 1 decode steps remain.
            heapq.heappush(running, (self.progress + req.output_tokens - 1, need, req.prompt_tokens, self.progress))
            self.kv_reserved += need
            self.prompt_sum += req.prompt_tokens
            self.admit_sum += self.progress
        used = (start - t) + spent
        self.busy_until = t + used if used > dt else 0.0
        done = 0
        if running:
            budget = max(0.0, dt - used)
            if budget > 0.0:
                self.progress += budget / m.step_seconds(len(running), self.context_tokens())
            while running and running[0][0] <= self.progress + 1e-9:
                _, need, prompt, admitted = heapq.heappop(running)
                self.kv_reserved -= need
                self.prompt_sum -= prompt
                self.admit_sum -= admitted
                done += 1
        return done

