"""Which GPU each sweep worker process sees: the visible GPUs shared out round-robin.

Without this, `seqbench sweep --jobs 8 --device cuda` started eight processes that each
trained on "cuda", which is the first GPU of every process: seven GPUs idled while one
ran eight trials. A worker process is given its GPU the only way that holds for
everything it runs (Lightning, a cell's own kernels, a task's generate step): its own
`CUDA_VISIBLE_DEVICES`, set before the process starts, so CUDA numbers it 0 there.

Workers fill slots 0..jobs-1 (a finished worker's slot goes to the next job) and slot `i`
gets visible GPU `i mod GPUs`. So with more jobs than GPUs the GPUs are shared evenly
(8 jobs on 4 GPUs: two per GPU), and every GPU is busy as soon as there are as many jobs
as GPUs. Visible GPUs are the entries of this process's own `CUDA_VISIBLE_DEVICES` when it
is set (indices or UUIDs, kept as given, so a SLURM allocation or a user's restriction is
respected), else the devices torch counts.

With `--gpus-per-trial G` a slot gets G GPUs instead of one: the visible GPUs are cut into
groups of G (4 GPUs, G=2: "0,1" and "2,3"; a remainder smaller than G stays idle) and the
slots take the groups round-robin; each trial then trains on its G GPUs with DDP.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from seqbench.errors import SeqbenchError

VISIBLE = "CUDA_VISIBLE_DEVICES"


def visible_gpus(environ: Mapping[str, str] = os.environ,
                 count: Callable[[], int] | None = None) -> list[str]:
    """This process's GPUs as `CUDA_VISIBLE_DEVICES` entries (`count` is torch's device
    count, asked only when the variable is unset)."""
    if VISIBLE in environ:
        kept: list[str] = []
        for entry in environ[VISIBLE].split(","):
            entry = entry.strip()
            if not (entry.isdigit() or entry.startswith(("GPU-", "MIG-"))):
                break  # CUDA reads up to the first entry that is neither index nor UUID
            kept.append(entry)
        return kept
    if count is None:
        import torch

        count = torch.cuda.device_count
    return [str(index) for index in range(count())]


def slot_environment(device: str, environ: Mapping[str, str] = os.environ,
                     count: Callable[[], int] | None = None, per_trial: int = 1
                     ) -> Callable[[int], dict[str, str]] | None:
    """What worker slot `i` adds to its environment, or None when workers need nothing
    (`--device cpu`, or `auto` on a machine without GPUs). `--device cuda` with no GPU
    visible, or fewer GPUs than one trial asks for, is the user's error, said once here
    rather than by every worker."""
    if device == "cpu":
        return None
    gpus = visible_gpus(environ, count)
    if not gpus and device == "cuda":
        raise SeqbenchError("--device cuda was requested but no CUDA device is visible "
                            f"({_shown(environ)}); make one visible, or use --device cpu.")
    if per_trial > 1 and len(gpus) < per_trial:
        raise SeqbenchError(f"--gpus-per-trial {per_trial} needs at least {per_trial} visible "
                            f"GPUs; this machine shows {len(gpus)} ({_shown(environ)}); "
                            f"give --gpus-per-trial {max(1, len(gpus))} or fewer.")
    if per_trial > 1 and any(gpu.startswith("MIG-") for gpu in gpus):
        raise SeqbenchError(f"--gpus-per-trial {per_trial} cannot group MIG instances: CUDA "
                            "gives a process one MIG instance only; use --gpus-per-trial 1.")
    if not gpus:
        return None
    groups = [",".join(gpus[start:start + per_trial])
              for start in range(0, len(gpus) - per_trial + 1, per_trial)]
    return lambda slot: {VISIBLE: groups[slot % len(groups)]}


def _shown(environ: Mapping[str, str]) -> str:
    """How this process's `CUDA_VISIBLE_DEVICES` reads, for an error line."""
    if VISIBLE not in environ:
        return f"{VISIBLE} unset"
    return f"{VISIBLE}={environ[VISIBLE]}" if environ[VISIBLE].strip() else f"{VISIBLE} empty"
