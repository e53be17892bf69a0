"""Options and helpers that the command modules share (`cli`, `cli_suite`).

They live below the commands so that each command module imports them without importing
another command module: the command line stays a set of thin modules with no cycle.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from seqbench.errors import Interrupted
from seqbench.params import MAX_THREADS

#: Environment variable that `--storage` defaults to (the way to pass a password); the same
#: as seqbench.sweeps.storage.STORAGE_ENV, named here so that --help imports nothing more.
STORAGE_ENV = "SEQBENCH_STORAGE_URL"

ThreadsOption = Annotated[
    Optional[int],
    typer.Option(help="Intra-op threads per training process (default: $OMP_NUM_THREADS, "
                 "else one for models under a million parameters and the cores this process "
                 "may use, divided between --jobs, for larger ones; never the momentary load). "
                 "Recorded with the run, and re-used by --spec and --resume.",
                 min=1, max=MAX_THREADS),
]


class interruptible:
    """Turn Ctrl-C inside the block into `Interrupted(kept)`.

    A run's own `Interrupted` (which names its folder) passes through unless `overrule`:
    inside a sweep, what matters is the storage and the command that resumes the sweep.
    """

    def __init__(self, kept: str, overrule: bool = False) -> None:
        self.kept = kept
        self.overrule = overrule

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, traceback) -> bool:
        if kind is not None and (issubclass(kind, KeyboardInterrupt) or
                                 (self.overrule and issubclass(kind, Interrupted))):
            raise Interrupted(self.kept) from None
        return False
