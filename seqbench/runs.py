"""Run records: the folder every run leaves behind, and reading it back.

A run folder holds `config.json` (the resolved spec and the command that re-runs it,
written *before* training so a crash never loses what was attempted), `history.csv` (one
row per epoch, appended as training goes), `best.ckpt` (the best validation epoch's weights,
a plain dict that `seqbench.best` saves with torch.save, not a Lightning checkpoint) and, at
the end, `metrics.json`. Reports read only these files.

Who may write a run folder, and when, is `seqbench.run_lock`'s job.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import shlex
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from seqbench import registry
from seqbench.config import RunSpec
from seqbench.errors import Interrupted, SeqbenchError
from seqbench.files import replaced_atomically

CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
CHECKPOINT = "best.ckpt"
ITEMS = "test_items.csv"
#: A stopped run's training state (`seqbench.resume`); removed when the run finishes.
RESUME_POINT = "resume.ckpt"


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON atomically so a reader never sees half a file (`files.replaced_atomically`)."""
    with replaced_atomically(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")


def save_checkpoint(payload: Mapping[str, Any], path: Path) -> None:
    """`torch.save` atomically. Serialised in memory first: torch's own writer, out of disk
    space, raises a RuntimeError naming neither the file nor the cause."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(dict(payload), buffer)
    with replaced_atomically(path, binary=True) as handle:
        handle.write(buffer.getbuffer())


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; a file of the wrong kind or content is a user error."""
    path = Path(path)
    if path.is_dir():
        raise SeqbenchError(f"'{path}' is a folder, not a JSON file.")
    try:
        with open(path, encoding="utf-8") as handle:
            payload = json.load(handle)
    except UnicodeDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not a text file (undecodable byte at offset "
                            f"{exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise SeqbenchError(f"'{path}' is not valid JSON: {exc.msg} at line {exc.lineno}, "
                            f"column {exc.colno}.") from None
    if not isinstance(payload, dict):
        raise SeqbenchError(f"'{path}' holds a JSON {type(payload).__name__}, not an object.")
    return payload


def check_output_dir(path: Path, option: str = "--output-dir") -> None:
    """Fail before any work if `path` cannot become a writable folder.

    Checked up front because the alternative is finding out after the training, or a
    FileExistsError traceback from deep inside `mkdir`.
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise SeqbenchError(f"{option} '{path}': '{existing}' is a broken link.")
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"lies under the file '{existing}'"
        raise SeqbenchError(f"{option} '{path}' {where}; give a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SeqbenchError(f"{option} '{path}': the folder '{existing}' is not writable.")


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's config.json (or the folder holding one), checked to hold a usable spec."""
    path = Path(path)
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise SeqbenchError(f"'{path}' is a folder without a {CONFIG}; give a run "
                                f"folder or its {CONFIG}.")
        path = path / CONFIG
    elif not path.exists():
        raise SeqbenchError(f"spec file '{path}' does not exist.")
    payload = read_json(path)
    spec = payload.get("spec")
    required = {"task": str, "dataset": str, "cell": str, "hparams": dict,
                "cell_params": dict, "task_params": dict}
    if not isinstance(spec, dict):
        raise SeqbenchError(f"'{path}' has no \"spec\" object; it is not a run's {CONFIG}.")
    for key, kind in required.items():
        if not isinstance(spec.get(key), kind):
            raise SeqbenchError(f"'{path}': spec.{key} is missing or not a {kind.__name__}; "
                                f"it is not a run's {CONFIG}.")
    return payload


def load_checkpoint(path: Path, remedy: str) -> dict[str, Any]:
    """A whole checkpoint with its weights, or one line saying what is wrong and `remedy`.

    The one place seqbench reads a checkpoint, always with `weights_only=True`: a run folder
    is data that people share, and unpickling anything else can run code. Everything
    seqbench writes (weights, optimizer and loop state, the random generators' states as
    tensors and lists) loads this way, so a file that needs more was made elsewhere.
    """
    import pickle
    import zipfile

    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = unsafe_global(exc)
        if refused is None:  # not a pickle at all, or a damaged one
            raise SeqbenchError(f"'{path}' is not a readable checkpoint "
                                f"({unpickler_reason(exc)}); {remedy}.") from None
        raise SeqbenchError(f"'{path}' holds Python objects that seqbench never writes "
                            f"({refused}); it was not loaded, since loading it could run "
                            f"code; {remedy}.") from None
    except (RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError, AttributeError,
            ImportError, zipfile.BadZipFile) as exc:
        raise SeqbenchError(f"'{path}' is not a readable checkpoint ({first_line(exc)}); "
                            f"{remedy}.") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise SeqbenchError(f"'{path}' holds no weights; {remedy}.")
    return checkpoint


def first_line(exc: BaseException) -> str:
    """An exception's first line of text, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def unsafe_global(exc: BaseException) -> str | None:
    """What torch's weights-only unpickler refused to import ("io.open"), if that was it."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return found.group(1) if found else None


def unpickler_reason(exc: BaseException) -> str:
    """The cause in torch's weights-only error ("Unsupported operand 197"), without the
    advice around it to load the file unsafely."""
    reason = str(exc).partition("WeightsUnpickler error:")[2].strip()
    return reason.splitlines()[0] if reason else first_line(exc)


def create_run_dir(output_dir: Path, spec: RunSpec) -> Path:
    """A new, unique folder named after what the run is."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{spec.task}-{spec.dataset}-{spec.cell}-seed{spec.seed}-{stamp}"
    check_output_dir(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        run_dir = output_dir / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise SeqbenchError(f"could not create a run folder under {output_dir}")


def environment() -> dict[str, Any]:
    """Versions and settings that can change a result, recorded with every run: the
    packages, and the machine (`seqbench.machine`: CPU model and instruction sets, torch's
    kernel level, MKL and oneDNN versions, the thread count)."""
    import lightning

    import seqbench
    from seqbench import machine

    return {
        "seqbench": seqbench.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **machine.describe(),
    }


def note_machine_change(config: Mapping[str, Any], threads: int | None) -> None:
    """Print one line where this machine differs from the one a run record ran on (a run
    re-run from its spec, or resumed), since the metrics may then differ too. `threads` is
    the count the run will train on where its spec decides it (`seqbench.threads`): torch's
    count before training is not the run's."""
    from seqbench import machine
    from seqbench.console import console

    now = environment()
    if threads is not None:
        now["cpu_threads"] = threads
    line = machine.difference(config.get("environment", {}), now)
    if line:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def write_config(run_dir: Path, spec: RunSpec, origin: Mapping[str, Any] | None = None) -> None:
    """The run's spec, command, versions and plugins, plus where it came from (`origin`:
    a sweep's final records its study and trial, so a resumed or re-read final is known)."""
    write_json(
        run_dir / CONFIG,
        {"spec": spec.to_dict(), "command": spec.command(), "environment": environment(),
         "plugins": registry.provenance(spec.cell, spec.task), **(origin or {})},
    )


#: The files a finished run's record needs for reports (no checkpoint, no figures).
RECORD_FILES = (CONFIG, HISTORY, METRICS, ITEMS)


def completed_run(folder: Path, spec: RunSpec) -> Path | None:
    """A completed run of exactly `spec` under `folder` (None if there is none), so a
    script that trains many runs into one folder resumes where it stopped."""
    wanted = spec.to_dict()
    for metrics in sorted(Path(folder).glob(f"*/{METRICS}")):
        config = metrics.parent / CONFIG
        if (config.is_file() and read_json(metrics).get("status") == "completed"
                and read_json(config).get("spec") == wanted):
            return metrics.parent
    return None


def keep_record_only(run_dir: Path) -> None:
    """Delete what a report does not read (checkpoint, figures), keeping `RECORD_FILES`."""
    for path in Path(run_dir).iterdir():
        if path.is_file() and path.name not in RECORD_FILES:
            path.unlink()


def read_spec(run_dir: Path) -> RunSpec:
    if not Path(run_dir).is_dir():
        raise SeqbenchError(f"'{run_dir}' is not a run folder (not a folder).")
    if not (Path(run_dir) / CONFIG).is_file():
        raise SeqbenchError(f"'{run_dir}' is not a run folder (no {CONFIG}).")
    return RunSpec.from_dict(read_run_config(Path(run_dir))["spec"])


def write_items(run_dir: Path, items: list[tuple[Any, Any]], metric: str) -> dict[str, str]:
    """Write the per-item test scores (`item,value,weight`); return their description.

    `kind` is "binary" when every item is a 0/1 outcome of weight 1 (accuracy), which
    reports compare with McNemar's test; anything else is "continuous".
    """
    import torch

    values = torch.cat([v.reshape(-1) for v, _ in items]).double().cpu().tolist()
    weights = torch.cat([w.reshape(-1) for _, w in items]).double().cpu().tolist()
    with open(run_dir / ITEMS, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item", "value", "weight"])
        writer.writerows((i, repr(v), repr(w)) for i, (v, w) in enumerate(zip(values, weights)))
    binary = all(v in (0.0, 1.0) for v in values) and all(w == 1.0 for w in weights)
    return {"file": ITEMS, "metric": metric, "kind": "binary" if binary else "continuous"}


class HistoryWriter:
    """Appends one CSV row per epoch, flushing each so a killed run keeps its curve."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None

    def __call__(self, row: Mapping[str, Any]) -> None:
        if self.columns is None:
            self.columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self.columns])


def diverged_record(exc: BaseException) -> dict[str, str]:
    """The metrics of a run whose training diverged: what `is_diverged` recognises, in a
    run folder's metrics.json and in a study's final record alike."""
    return {"status": "diverged", "error": str(exc)}


def is_diverged(metrics: Mapping[str, Any]) -> bool:
    return metrics.get("status") == "diverged"


def refuse_non_finite(metrics: Mapping[str, Any], run_dir: Path) -> None:
    """A result is a number: a test metric that came out infinite or NaN (an overflow the
    task did not guard against) marks the run failed, in one line, instead of entering a
    table as a result."""
    import math

    bad = [(key, value) for key, value in metrics.items() if key.startswith("test_")
           and isinstance(value, float) and not math.isfinite(value)]
    if bad:
        key, value = bad[0]
        message = (f"the run's {key} is {value}, not a number a result can be; the data's "
                   "values may be too large to compute with (rescale them). Run record: "
                   f"{run_dir}")
        write_json(run_dir / METRICS, {"status": "failed", "error": message})
        raise SeqbenchError(message)


def interrupted(run_dir: Path, epochs: int, resumable_from: int | None = None) -> Interrupted:
    """Mark a run stopped by Ctrl-C in its metrics.json; say what it kept and how to go on:
    continue from its resume point (after `resumable_from` epochs) if it has one."""
    kept = [CONFIG] + [name for name in (HISTORY, CHECKPOINT) if (run_dir / name).is_file()]
    write_json(run_dir / METRICS, {"status": "interrupted", "epochs": epochs})
    how = (f"Continue it from epoch {resumable_from} with "
           f"`seqbench run --resume {shlex.quote(str(run_dir))}`."
           if resumable_from is not None else
           f"Start it again with `seqbench run --spec {shlex.quote(str(run_dir / CONFIG))}`.")
    return Interrupted(f"the run stopped after {epochs} finished epoch(s); kept "
                       f"{', '.join(kept)} in {run_dir}. {how}")
