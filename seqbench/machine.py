"""The machine a run ran on, as far as it can change the numbers, and how another differs.

The same spec and seed give the same metrics only on the same kind of machine: the CPU's
instruction set picks the kernels torch dispatches to (AVX2 or AVX-512 sum in another
order), MKL and oneDNN versions change those kernels, and the thread count changes how sums
are split. On Japanese Vowels one final run tested 0.9730 on two threads, 0.9595 on two
threads of another host and 0.900 on one thread. So every run record stores these, and a
re-run (`seqbench run --spec`, `--resume`) says in one line where they differ.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: The recorded fields that can change a result on CPU, in the order a difference names them.
COMPARED = ("cpu", "cpu_flags", "cpu_capability", "torch", "mkl", "onednn", "cpu_threads")
#: CPU flags that select numerical kernels (x86 vector extensions, ARM's SIMD).
SIMD = re.compile(r"^(sse4_[12]|avx\w*|fma\w*|f16c|amx\w*|asimd\w*|sve\w*)$")


def cpu(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, str]:
    """(CPU model, its vector instruction sets) from /proc/cpuinfo; elsewhere the model that
    `platform` knows and no flags."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or platform.machine(), ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    model = fields.get("model name") or fields.get("Model") or platform.machine()
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    return model, " ".join(sorted(flag for flag in set(flags) if SIMD.match(flag)))


def library_versions(config: str) -> dict[str, str]:
    """MKL's and oneDNN's versions from `torch.__config__.show()` ("none" if not built in)."""
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)", config)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) v([\w.]+)", config)
    return {"mkl": mkl.group(1) if mkl else "none", "onednn": onednn.group(1) if onednn else "none"}


def describe() -> dict[str, Any]:
    """CPU, instruction sets, torch's kernel level, math libraries and threads, now."""
    import torch

    model, flags = cpu()
    return {
        "cpu": model,
        "cpu_flags": flags,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        **library_versions(torch.__config__.show()),
        "cpu_threads": torch.get_num_threads(),
    }


def difference(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> str:
    """One line naming each compared field that differs ("" when none does). A record
    written before a field was stored is compared on the fields it has."""
    changed = [f"{key} {recorded[key]} -> {current[key]}" for key in COMPARED
               if key in recorded and key in current and recorded[key] != current[key]]
    if not changed:
        return ""
    return ("note: this machine differs from the run record's ("
            + "; ".join(changed) + "), so the same spec and seed may give other metrics.")
