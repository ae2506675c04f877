"""Properties of the planner, checked with hypothesis over random shapes and GPUs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.planner import ModelArch, plan, valid_tensor_parallel_sizes
from modelfleet.planner.quant import resolve_quantization, weights_bytes


@st.composite
def archs(draw: st.DrawFn) -> ModelArch:
    kv = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    group = draw(st.sampled_from([1, 2, 4, 8]))
    head_dim = draw(st.sampled_from([64, 128, 256]))
    heads = kv * group
    hidden = heads * head_dim
    params = draw(st.integers(min_value=100_000_000, max_value=500_000_000_000))
    return ModelArch(
        num_layers=draw(st.integers(min_value=1, max_value=128)),
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        parameters=params,
        max_position_embeddings=draw(st.sampled_from([None, 4096, 32768, 131072])),
        hidden_size=hidden,
        unquantized_parameters=draw(st.sampled_from([None, params // 10])),
    )


memory = st.floats(min_value=8, max_value=192, allow_nan=False)
utilization = st.floats(min_value=0.3, max_value=1.0, allow_nan=False)
max_len = st.sampled_from([None, 2048, 8192, 32768])
quant = st.sampled_from(["none", "fp8", "awq", "gguf-q4_k_m", "bitsandbytes"])
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(archs(), quant, memory, utilization, max_len)
def test_more_gpus_never_fit_less(arch: ModelArch, q: str, gib: float, util: float, length: int | None) -> None:
    previous_fit, previous_tokens = False, -1
    for tp in valid_tensor_parallel_sizes(arch):
        report = plan(arch, q, gib, tp, util, length)
        assert report.kv_cache_tokens is not None
        assert report.kv_cache_tokens >= previous_tokens
        assert report.fits or not previous_fit
        previous_fit, previous_tokens = bool(report.fits), report.kv_cache_tokens


@SETTINGS
@given(archs(), memory, st.sampled_from([1, 2, 4, 8]), utilization, max_len)
def test_fp8_never_needs_more_memory_than_bf16(
    arch: ModelArch, gib: float, gpus: int, util: float, length: int | None
) -> None:
    assert weights_bytes(arch, resolve_quantization("fp8")) <= weights_bytes(arch, resolve_quantization("none"))
    bf16 = plan(arch, "none", gib, gpus, util, length)
    fp8 = plan(arch, "fp8", gib, gpus, util, length)
    fp8_kv = plan(arch, "fp8", gib, gpus, util, length, "fp8")
    assert (bf16.kv_cache_tokens or 0) <= (fp8.kv_cache_tokens or 0) <= (fp8_kv.kv_cache_tokens or 0)
    assert (fp8_kv.kv_cache_bytes_per_token or 0) * 2 == bf16.kv_cache_bytes_per_token
    if bf16.fits:
        assert fp8.fits and fp8_kv.fits


@SETTINGS
@given(archs(), quant, memory, st.sampled_from([1, 2, 4, 8]), st.floats(0.3, 0.99), st.floats(0.001, 0.5))
def test_more_utilization_never_fewer_kv_tokens(
    arch: ModelArch, q: str, gib: float, gpus: int, low: float, step: float
) -> None:
    high = min(1.0, low + step)
    a = plan(arch, q, gib, gpus, low)
    b = plan(arch, q, gib, gpus, high)
    assert (a.kv_cache_tokens or 0) <= (b.kv_cache_tokens or 0)
    assert b.fits or not a.fits


@SETTINGS
@given(archs(), quant, memory, st.sampled_from([1, 2, 3, 4, 6, 8]), utilization, max_len)
def test_report_is_consistent(arch: ModelArch, q: str, gib: float, gpus: int, util: float, length: int | None) -> None:
    report = plan(arch, q, gib, gpus, util, length)
    assert report.kv_cache_bytes_per_token == 2 * arch.num_layers * arch.num_key_value_heads * arch.head_dim * 2
    assert report.max_model_len is not None and report.kv_cache_tokens is not None
    assert report.max_concurrent_sequences == report.kv_cache_tokens // report.max_model_len
    assert report.kv_cache_tokens % 16 == 0
    assert report.fits is (not report.reasons)
    if report.fits:
        assert report.kv_cache_tokens >= report.max_model_len
        assert report.min_tensor_parallel_size is not None and report.min_tensor_parallel_size <= gpus
        assert report.suggestion is None
    if length is None and report.fits and report.max_model_len_source == "planner":
        assert report.max_model_len % 256 == 0
    if report.min_tensor_parallel_size is not None:
        assert plan(arch, q, gib, report.min_tensor_parallel_size, util, length).fits
