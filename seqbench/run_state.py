"""Whether a run folder holds a stopped run, read from its record files alone.

Kept apart from `seqbench.resume` (which imports torch and Lightning, seconds) so that
`seqbench run --resume` of a finished run is refused at once.
"""

from __future__ import annotations

from pathlib import Path

from seqbench import run_lock, runs
from seqbench.errors import SeqbenchError


def stopped_run(run_dir: Path | None, check_free: bool = False) -> Path:
    """The resume point of a stopped run (not yet checked), or a one-line error saying why
    there is none. `check_free`: also refuse a folder another process holds, or one that
    cannot be written (the quick check before this process takes the lock itself)."""
    if run_dir is None or not (Path(run_dir) / runs.CONFIG).is_file():
        raise SeqbenchError(f"'{run_dir}' is not a run folder (no {runs.CONFIG}).")
    status = run_status(Path(run_dir))
    if status not in (None, "interrupted"):
        raise SeqbenchError(f"run '{run_dir}' has already ended ({status}); there is nothing "
                            "to resume.")
    if check_free:
        run_lock.check_run_folder_free(Path(run_dir))
    point = Path(run_dir) / runs.RESUME_POINT
    if not point.is_file():
        raise SeqbenchError(f"run '{run_dir}' stopped before its first resume point; "
                            f"{start_again(Path(run_dir))}")
    return point


def start_again(run_dir: Path) -> str:
    return f"start it again with: {runs.read_spec(run_dir).command()}"


def run_status(run_dir: Path) -> str | None:
    """The status in a run's metrics.json, or None while it has none (running, or killed)."""
    path = run_dir / runs.METRICS
    return runs.read_json(path).get("status") if path.is_file() else None
