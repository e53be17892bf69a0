"""A sweep spread over many machines (README, "Scaling out"): workers started with
`--search-only` fill one study's budget together, then one process runs the same command
without it, so selection and finals run exactly once."""

from __future__ import annotations

import json
import os
import time

import optuna
import pytest

from seqbench.sweeps.storage import open_storage
from test_sweep import FAST, finished, postgres_url, sweep, sweep_process, trials_of  # noqa: F401


def test_search_only_leaves_selection_and_finals_to_the_same_command_without_it(
        toy_task, tmp_path, capsys):
    out = tmp_path / "sweeps"
    said = sweep(capsys, out, "--cells", "gru", "--trials", "3", "--search-only")
    assert "selection and finals are left" in said
    searched = {t.number: t.params for t in trials_of(out, "gru")}
    assert len(searched) == 3 and len(finished(trials_of(out, "gru"))) == 3
    assert not (out / "finals").exists() and not (out / "selection").exists()

    sweep(capsys, out, "--cells", "gru", "--trials", "3")  # the one process that finishes it
    assert {t.number: t.params for t in trials_of(out, "gru")} == searched  # no new trial
    finals = list((out / "finals").glob("seqbench/toymusic-tiny/gru/seed*/metrics.json"))
    assert len(finals) == int(FAST[FAST.index("--seeds") + 1])
    assert all(json.loads(f.read_text())["status"] == "completed" for f in finals)


@pytest.mark.slow  # 50 s; tests/test_workers.py keeps eight workers on one PostgreSQL study
def test_eight_search_workers_on_one_postgres_study_lose_and_repeat_nothing(
        toy_task, tmp_path, postgres_url):  # noqa: F811
    """Eight `--search-only` workers (a SLURM array's tasks, here processes on loopback)
    share a 16-trial budget, then one process runs selection and finals: every trial of the
    budget completes once (trials beyond it are marked surplus before training), no trial
    is lost, and each final seed is trained exactly once."""
    study = f"pg8x{os.getpid()}x{time.time_ns()}"
    args = ["--cells", "gru", "--trials", "16", "--epochs", "2", "--storage", postgres_url,
            "--study", study]
    workers = [sweep_process(tmp_path / f"worker{i}", *args, "--search-only") for i in range(8)]
    for worker in workers:
        assert worker.wait(timeout=900) == 0, worker.stderr.read().decode()
    loaded = optuna.load_study(study_name=f"{study}/toymusic/tiny/gru",
                               storage=open_storage(postgres_url))
    counted = [t for t in loaded.trials if t.state.name in ("COMPLETE", "PRUNED")]
    others = [t for t in loaded.trials if t not in counted]
    assert len(counted) == 16  # the budget, exactly
    assert all(t.user_attrs.get("reason", "").startswith("surplus") for t in others), \
        [(t.state.name, t.user_attrs) for t in others]  # nothing lost: only surplus
    folders = [path.name for path in tmp_path.glob(f"worker*/trials/{study}/toymusic-tiny/gru/*")]
    assert sorted(folders) == sorted(f"trial-{t.number:04d}" for t in counted)  # each once
    assert len({t.user_attrs["worker"] for t in counted}) > 1
    finals_dir = tmp_path / "finisher"
    finisher = sweep_process(finals_dir, *args)
    assert finisher.wait(timeout=900) == 0, finisher.stderr.read().decode()
    assert len(optuna.load_study(study_name=f"{study}/toymusic/tiny/gru",
                                 storage=open_storage(postgres_url)).trials) == len(loaded.trials)
    finals = list(finals_dir.glob(f"finals/{study}/toymusic-tiny/gru/seed*/metrics.json"))
    assert len(finals) == 1  # sweep_process asks for one final seed
    assert not any((tmp_path / f"worker{i}" / "finals").exists() for i in range(8))
