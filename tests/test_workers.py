"""Many workers on one study, and workers told to stop (issue 38, items 4 and 5).

Every worker here is a real `seqbench sweep` process: eight on one PostgreSQL study (the
README's "many machines", each with an output folder of its own), two started at once on one
journal, and a `--jobs 2` sweep stopped by SIGTERM as a batch scheduler stops it. What each
checks is what a user counts on: no trial lost or done twice, the task's defaults trialled
once, each selection re-run and each final trained exactly once, every worker ending with
exit code 0, and a stopped sweep leaving no process behind and a study that resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from seqbench.sweeps.storage import open_storage
from test_sweep import postgres_url, wait_for  # noqa: F401 (a fixture, and a helper)

ARGS = ["--task", "toymusic", "--cells", "gru", "--pruner", "none"]
FAST = ["--epochs", "2"]


def worker(out: Path, *args: str) -> subprocess.Popen:
    """A `seqbench sweep` process (one thread: parallel processes must not starve each other)."""
    return subprocess.Popen([sys.executable, "-m", "seqbench", "sweep", "--output-dir", str(out),
                             *ARGS, *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(workers: list[subprocess.Popen], timeout: float) -> list[str]:
    """Each worker's stderr, after asserting that every one ended with exit code 0."""
    errors = []
    try:
        for process in workers:
            errors.append(process.communicate(timeout=timeout)[1])
    finally:
        for process in workers:
            process.kill()
    for process, err in zip(workers, errors):
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
    return errors


def trained(folders: list[Path], stage: str) -> list[Path]:
    """The run folders of `stage` that trained to completion, over every worker's folder."""
    return [metrics.parent for folder in folders
            for metrics in (folder / stage).rglob("metrics.json")]


def check_study(study: optuna.Study, trials: int, seeds: int, folders: list[Path]) -> None:
    """No trial lost or doubled, the defaults once, every re-run and final exactly once."""
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == trials, states
    assert set(states) <= {"COMPLETE", "FAIL"}, states
    # A worker that asks for a trial after the others filled the budget gets one it
    # gives back at once, marked as surplus; any other failure is a lost trial.
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert all(t.user_attrs.get("reason", "").startswith("surplus") for t in failed), \
        [t.user_attrs for t in failed]
    assert sum(bool(t.user_attrs.get("defaults")) for t in study.trials) == 1
    runs = [t.user_attrs["run_dir"] for t in study.trials if t.state.name == "COMPLETE"]
    assert len(set(runs)) == trials
    attrs = study.user_attrs
    finals = sorted(key for key in attrs if key.startswith("final_seed"))
    assert len(finals) == seeds and attrs.get("selected_trial") is not None
    assert len(trained(folders, "finals")) == seeds  # each final trained once, by one worker
    candidates = len(attrs.get("selection", {}))
    reruns = trained(folders, "selection")
    assert len(reruns) == candidates * 2, reruns  # --rerun-seeds 2: each re-run once


def test_eight_workers_on_one_postgres_study_do_every_job_once_and_all_exit_0(
        toy_task, tmp_path, postgres_url):
    """Five of eight such workers used to end in tracebacks (selection and finals removed
    each other's folders), and the defaults were trialled three times."""
    study = f"eight{os.getpid()}x{time.time_ns()}"
    folders = [tmp_path / f"machine{i}" for i in range(8)]
    args = [*FAST, "--trials", "8", "--top", "2", "--rerun-seeds", "2", "--seeds", "2",
            "--storage", postgres_url, "--study", study]
    finish([worker(folder, *args) for folder in folders], timeout=900)
    loaded = optuna.load_study(study_name=f"{study}/toymusic/tiny/gru",
                               storage=open_storage(postgres_url))
    check_study(loaded, trials=8, seeds=2, folders=folders)


def test_two_sweeps_started_at_once_on_one_journal_both_finish_and_share_the_work(
        toy_task, tmp_path):
    """4 of 6 such pairs crashed ("Parent directory .../trial-0000-seed1 does not exist")."""
    out = tmp_path / "sweeps"
    args = [*FAST, "--trials", "4", "--top", "2", "--rerun-seeds", "2", "--seeds", "2"]
    finish([worker(out, *args), worker(out, *args)], timeout=900)
    loaded = optuna.load_study(study_name="seqbench/toymusic/tiny/gru",
                               storage=open_storage(str(out / "sweeps.journal")))
    check_study(loaded, trials=4, seeds=2, folders=[out])


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        path = Path(f"/proc/{todo.pop()}/task")
        for task in path.glob("*/children") if path.exists() else []:
            kids = [int(kid) for kid in task.read_text().split()]
            found += kids
            todo += kids
    return found


def test_sigterm_to_a_parallel_sweep_stops_its_workers_keeps_the_study_and_resumes(
        toy_task, tmp_path):
    """SIGTERM (a scheduler's end of a job) used to kill the parent alone, with exit code 143,
    and leave its workers training as orphans."""
    out = tmp_path / "sweeps"
    args = ["--trials", "4", "--seeds", "1", "--rerun-seeds", "0", "--jobs", "2",
            "--max-time", "4", "--set", "epochs=100000", "--set", "patience=0"]
    process = worker(out, *args)
    journal = str(out / "sweeps.journal")

    def states() -> list[str]:
        try:
            return [t.state.name for t in optuna.load_study(
                study_name="seqbench/toymusic/tiny/gru", storage=open_storage(journal)).trials]
        except (KeyError, FileNotFoundError):
            return []

    try:
        wait_for(lambda: states().count("RUNNING") == 2 or process.poll() is not None, 240,
                 "two running trials")
        assert process.poll() is None, process.communicate()
        workers = descendants(process.pid)
        assert workers
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and "run the same command again" in last, err
    assert "Traceback" not in err, err
    time.sleep(1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    assert not alive, f"orphans still running: {alive}"
    assert "RUNNING" not in states()
    finish([worker(out, *args)], timeout=600)  # the same command resumes and completes
    final = states()
    assert final.count("COMPLETE") == 4, final
