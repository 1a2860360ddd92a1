"""What a model was trained on: the CPU and the numeric kernels that decide its last bits.

A seeded training repeats bit for bit on one machine, but not across instruction sets: the same 3,000-step DQN
training gives other weights with its kernels held to SSE 4.2 than with AVX2 or AVX-512 (docs/signals-lab.md, the
lab's results), and reinforcement learning amplifies such rounding into other decisions. So every published
model and every signals-lab task records where it was trained, and "why does my rerun differ" has an answer.

Only libraries already imported are asked (torch's kernel level when torch is loaded): recording this must not
load torch into a process that trains a K-means.

>>> info = machine_info()
>>> sorted(k for k in ("cpu", "isa", "python", "numpy") if k in info)
['cpu', 'isa', 'numpy', 'python']
>>> describe({"cpu": "AMD EPYC", "isa": "avx512", "torch": "2.15.0", "torch_cpu_capability": "AVX512"})
'AMD EPYC (avx512); torch 2.15.0, kernels AVX512'
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

#: environment variables that hold the numeric libraries' kernels below what the CPU offers
KERNEL_OVERRIDES: Final = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")
_ISA_LEVELS: Final = ("avx512f", "avx2", "avx", "sse4_2")  # the highest the CPU flags name wins


def _cpuinfo() -> tuple[str, str]:
    """CPU model name and its highest SIMD level from ``/proc/cpuinfo`` (Linux; elsewhere ``platform``)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), "unknown"
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    isa = next((level.removesuffix("f") for level in _ISA_LEVELS if level in flags), "unknown")
    return model or platform.machine(), isa


def machine_info() -> dict[str, str]:
    """CPU, its SIMD level, Python, numpy, torch and its kernel level (when loaded), and kernel overrides."""
    cpu, isa = _cpuinfo()
    info = {"cpu": cpu, "isa": isa, "python": platform.python_version()}
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        info["numpy"] = str(numpy.__version__)
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = str(torch.__version__)
        info["torch_cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    for name in KERNEL_OVERRIDES:
        if os.environ.get(name):
            info[name] = os.environ[name]
    return info


def describe(info: Mapping[str, str]) -> str:
    """One line for a report: CPU (SIMD level); torch and its kernels; any override."""
    text = f"{info.get('cpu', 'unknown CPU')} ({info.get('isa', 'unknown')})"
    if "torch" in info:
        text += f"; torch {info['torch']}, kernels {info.get('torch_cpu_capability', 'unknown')}"
    overrides = [f"{name}={info[name]}" for name in KERNEL_OVERRIDES if name in info]
    return text + (f"; {', '.join(overrides)}" if overrides else "")
