"""Memory of common GPUs, keyed by the `nvidia.com/gpu.product` node label.

NVIDIA's GPU feature discovery writes the NVML device name with spaces replaced by `-`
(`NVIDIA H100 80GB HBM3` -> `NVIDIA-H100-80GB-HBM3`); with time-slicing it appends `-SHARED`,
with the MIG `single` strategy `-MIG-<profile>` (a MIG slice has a fraction of the memory,
so those are not looked up). Memory is the total `nvidia-smi` / NVML reports, in MiB,
converted to GiB; the part of it that CUDA never hands out is in the runtime reserve.

Sources for the MiB figures: nvidia-smi totals published by Modal (modal-labs/modal-client
PR 2797: H100 81559, A100 80GB 81920, A100 40GB 40960, A10 23028, L40S 46068, L4 23034,
T4 15360 MiB); vLLM issue 34076 (RTX 5090 32607 MiB); pytorch/ao PR 4002 (B200: CUDA
reports 178.35 GiB). The others are the nvidia-smi totals commonly shown for those boards;
`gpu.memoryGiB` overrides any of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    """One GPU model."""

    product: str
    memory_gib: float
    description: str = ""


def _mib(mib: int) -> float:
    return round(mib / 1024, 2)


_TABLE: tuple[GPU, ...] = (
    GPU("NVIDIA-B200", 178.35, "B200 (Blackwell) 180 GB HBM3e"),
    GPU("NVIDIA-H200", _mib(143771), "H200 SXM 141 GB HBM3e"),
    GPU("NVIDIA-H200-NVL", _mib(143771), "H200 NVL 141 GB"),
    GPU("NVIDIA-GH200-480GB", _mib(97871), "GH200 Grace Hopper, 96 GB HBM3"),
    GPU("NVIDIA-H100-80GB-HBM3", _mib(81559), "H100 SXM5 80 GB"),
    GPU("NVIDIA-H100-PCIe", _mib(81559), "H100 PCIe 80 GB"),
    GPU("NVIDIA-H100-NVL", _mib(95830), "H100 NVL 94 GB"),
    GPU("NVIDIA-H800", _mib(81559), "H800 SXM 80 GB"),
    GPU("NVIDIA-A100-SXM4-80GB", _mib(81920), "A100 SXM4 80 GB"),
    GPU("NVIDIA-A100-80GB-PCIe", _mib(81920), "A100 PCIe 80 GB"),
    GPU("NVIDIA-A100-SXM4-40GB", _mib(40960), "A100 SXM4 40 GB"),
    GPU("NVIDIA-A100-PCIE-40GB", _mib(40960), "A100 PCIe 40 GB"),
    GPU("NVIDIA-L40S", _mib(46068), "L40S 48 GB"),
    GPU("NVIDIA-L40", _mib(46068), "L40 48 GB"),
    GPU("NVIDIA-A40", _mib(46068), "A40 48 GB"),
    GPU("NVIDIA-L4", _mib(23034), "L4 24 GB"),
    GPU("NVIDIA-A10G", _mib(23028), "A10G 24 GB (AWS g5)"),
    GPU("NVIDIA-A10", _mib(23028), "A10 24 GB"),
    GPU("NVIDIA-RTX-6000-Ada-Generation", _mib(49140), "RTX 6000 Ada 48 GB"),
    GPU("NVIDIA-RTX-A6000", _mib(49140), "RTX A6000 48 GB"),
    GPU("NVIDIA-GeForce-RTX-5090", _mib(32607), "GeForce RTX 5090 32 GB"),
    GPU("NVIDIA-GeForce-RTX-4090", _mib(24564), "GeForce RTX 4090 24 GB"),
    GPU("NVIDIA-GeForce-RTX-3090", _mib(24576), "GeForce RTX 3090 24 GB"),
    GPU("Tesla-V100-SXM2-32GB", _mib(32768), "V100 SXM2 32 GB"),
    GPU("Tesla-T4", _mib(15360), "T4 16 GB"),
    GPU("AMD-Instinct-MI300X", 192.0, "MI300X 192 GB HBM3 (AMD device plugin label)"),
)

GPUS: dict[str, GPU] = {gpu.product: gpu for gpu in _TABLE}

_SUFFIX = re.compile(r"(?i)-(shared|oam)$")


def _normalize(product: str) -> str:
    return re.sub(r"[\s_]+", "-", product.strip()).lower()


_BY_KEY: dict[str, GPU] = {_normalize(gpu.product): gpu for gpu in _TABLE}


def lookup_gpu(product: str) -> GPU | None:
    """The GPU for a `nvidia.com/gpu.product` value, case-insensitive; None when unknown.

    `-SHARED` (time-slicing) is ignored; MIG slices (`-MIG-...`) are unknown on purpose; a
    name without the `NVIDIA-` prefix (`L4`, `H100-80GB-HBM3`) is tried with it.
    """
    key = _normalize(product)
    if "-mig-" in key:
        return None
    while True:
        stripped = _SUFFIX.sub("", key)
        if stripped == key:
            break
        key = stripped
    return _BY_KEY.get(key) or _BY_KEY.get(f"nvidia-{key}")
