"""Same spec, same numbers, whatever else the machine is doing (issue 38).

The thread count changes a run's floating-point sums, so it must never follow the momentary
load: it is decided from the usable cores and the model's size, recorded in the spec and
re-used by `--spec` and `--resume`. The end-to-end test runs one spec alone and beside a
process that keeps a core busy (it is part of this test's own locked run) and compares the
metrics digit for digit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench import threads
from seqbench.cli import main

#: A speech LSTM whose test NLL differs in the seventh digit between one and two threads, so
#: a thread count that followed the load would show; small, so the runs take seconds.
SPEECH = ["run", "--task", "speech", "--cell", "lstm", "--epochs", "2", "--hidden-size", "128",
          "--quiet"]
#: Fields of metrics.json that are timings, not results.
TIMINGS = {"train_seconds", "seconds_per_epoch", "compile_seconds",
           "train_timesteps_per_second"}


def seqbench_run(argv: list, out: Path) -> dict:
    """`seqbench run` in a fresh process that chooses its own threads; its metrics."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", threads.THREADS_ENV, threads.CEILING_ENV)}
    subprocess.run([sys.executable, "-m", "seqbench", *map(str, argv), "--output-dir", str(out)],
                   env=env, check=True, capture_output=True, timeout=300)
    (metrics,) = out.glob("*/metrics.json")
    return json.loads(metrics.read_text())


def results(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in TIMINGS}


def test_a_busy_neighbour_does_not_change_a_runs_numbers(tmp_path):
    alone = seqbench_run(SPEECH, tmp_path / "alone")
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        beside = seqbench_run(SPEECH, tmp_path / "beside")
    finally:
        burner.kill()
        burner.wait()
    assert results(beside) == results(alone)
    (config,) = (tmp_path / "beside").glob("*/config.json")
    assert json.loads(config.read_text())["spec"]["threads"] == 1  # 74k parameters


@pytest.fixture
def cores(monkeypatch):
    """Pretend this process may use `n` cores, with no explicit thread count anywhere."""
    for name in ("OMP_NUM_THREADS", threads.THREADS_ENV, threads.CEILING_ENV):
        monkeypatch.delenv(name, raising=False)

    def usable(n: int) -> None:
        monkeypatch.setattr(threads, "usable_cores", lambda: n)
    return usable


def test_the_count_follows_the_model_size_and_the_usable_cores_only(cores):
    import torch

    before = torch.get_num_threads()
    try:
        cores(8)
        assert threads.decide(threads.ONE_THREAD_BELOW - 1) == 1
        assert threads.decide(threads.ONE_THREAD_BELOW) == 8 == torch.get_num_threads()
        # a run of 2 processes on this machine (DDP, --devices 2): half the cores each
        assert threads.decide(threads.ONE_THREAD_BELOW, processes=2) == 4
        assert threads.configure(jobs=3) == 2  # a sweep's share: 8 cores // 3 jobs
        assert threads.decide(threads.ONE_THREAD_BELOW) == 2
        assert threads.decide(threads.ONE_THREAD_BELOW, processes=2) == 1
        assert threads.decide(10, recorded=4) == 4  # a recorded count wins over the rule
    finally:
        torch.set_num_threads(before)


def test_an_explicit_count_wins_and_is_capped_at_the_usable_cores(cores, monkeypatch, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        cores(2)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's shell
        assert threads.configure() == 1 and os.environ[threads.THREADS_ENV] == "1"
        assert threads.decide(threads.ONE_THREAD_BELOW * 10) == 1
        assert threads.decide(10, recorded=16) == 2
        assert "16 threads were asked for but this process may use 2 cores" in \
            capsys.readouterr().err
    finally:
        torch.set_num_threads(before)


def test_the_count_is_recorded_and_reused_by_spec_and_resume(tmp_path, capsys):
    """`--threads 2` is recorded; `--spec` re-uses it, another `--threads` overrides it."""
    from seqbench.runs import read_spec

    first = tmp_path / "first"
    assert main([*SPEECH[:-1], "--epochs", "1", "--threads", "2", "--quiet",
                 "--output-dir", str(first)]) == 0
    (run_dir,) = first.iterdir()
    assert read_spec(run_dir).threads == 2
    assert "--threads 2" in json.loads((run_dir / "config.json").read_text())["command"]
    again = tmp_path / "again"
    assert main(["run", "--spec", str(run_dir), "--quiet", "--output-dir", str(again)]) == 0
    assert read_spec(next(again.iterdir())).threads == 2
    other = tmp_path / "other"
    assert main(["run", "--spec", str(run_dir), "--threads", "1", "--quiet",
                 "--output-dir", str(other)]) == 0
    assert read_spec(next(other.iterdir())).threads == 1
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir), "--threads", "1"]) == 2
    assert "--resume continues the run's own spec" in capsys.readouterr().err


def test_an_api_call_leaves_the_thread_settings_as_it_found_them(monkeypatch, tmp_path):
    """`configure` writes the count into the environment for worker processes; an API entry
    point must not leave it there, or a notebook's `sb.run(threads=2)` makes the next
    `sb.run()` of a small model train on two threads where the rule gives one."""
    import torch

    import seqbench as sb

    for name in threads.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()

    @threads.scoped
    def entry_point():
        threads.configure(3)
        return os.environ[threads.THREADS_ENV], torch.get_num_threads()

    assert entry_point() == ("3", 3)
    assert not any(name in os.environ for name in threads.SETTINGS)
    assert torch.get_num_threads() == before
    run = sb.run(task="speech", cell="gru", epochs=1, hidden_size=8, threads=2,
                 output_dir=tmp_path, progress=False)  # the real entry point
    assert run.spec.threads == 2
    assert not any(name in os.environ for name in threads.SETTINGS)
    assert torch.get_num_threads() == before
