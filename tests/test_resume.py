"""Runs that survive being stopped: SIGKILL or Ctrl-C mid-training, resume, same result.

The stopped runs happen in a child process (a real SIGKILL, a real SIGINT); the child stops
itself a few loader items into an epoch after its first resume point, so where it stops is
deterministic and the test never races the training. Speech (Japanese Vowels, shipped with
aeon) with two dropout layers draws from torch's RNG every step and reshuffles every epoch,
patience makes early stopping's state matter, and a decaying learning rate makes the
schedule's, so a resume that restored any of those wrongly would end with different numbers
(the history's lr column shows the schedule itself).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqbench.cli import main
from seqbench.config import build_spec
from seqbench.resume import LOOP_KEY, RESUME_POINT
from seqbench.runs import read_json
from seqbench.resume import can_resume

SETTINGS = {"epochs": 16, "layers": 2, "dropout": 0.3, "patience": 3, "min_epochs": 0,
            "hidden_size": 16, "lr_decay": 0.95, "lr_decay_start": 3}

STOPPED_RUN = """
import os, signal, sys
from pathlib import Path
from lightning.pytorch.callbacks import Callback
import seqbench.resume
from seqbench.config import build_spec
from seqbench.errors import Interrupted
from seqbench.train import train

seqbench.resume.ASSUMED_FIRST_COST = 0.0  # a resume point at once; the cadence is not tested here
run_dir, how, phase = Path(sys.argv[1]), getattr(signal, sys.argv[2]), sys.argv[3]

class StopMidEpoch(Callback):
    def on_train_batch_end(self, trainer, *args):
        if (phase == "train" and (run_dir / "resume.ckpt").is_file()
                and trainer.current_epoch >= 5):
            os.kill(os.getpid(), how)

    def on_test_batch_start(self, trainer, *args):
        if phase == "test":
            os.kill(os.getpid(), how)

try:
    train(build_spec("speech", "gru", settings=%r), run_dir=run_dir, show_progress=False,
          callbacks=[StopMidEpoch()], logger="csv")
except Interrupted as exc:
    print(exc, file=sys.stderr)
    sys.exit(130)
""" % SETTINGS


def stopped_run(run_dir: Path, signal_name: str, phase: str = "train"
                ) -> subprocess.CompletedProcess:
    """The run in a child process that sends itself `signal_name` while training (a few
    batches into epoch 6) or in its test pass."""
    return subprocess.run([sys.executable, "-c", STOPPED_RUN, str(run_dir), signal_name, phase],
                          capture_output=True, text=True, timeout=300)


def history(run_dir: Path) -> list[dict[str, str]]:
    """Every history column except the wall-clock ones."""
    with open(run_dir / "history.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    from seqbench.train import train

    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(build_spec("speech", "gru", settings=SETTINGS), run_dir=run_dir, show_progress=False)
    return run_dir


RESULT_KEYS = ("epochs", "best_epoch", "best_val_nll", "train_loss", "val_accuracy",
               "val_nll", "test_accuracy", "test_macro_f1", "test_nll")


def test_a_killed_run_resumes_to_the_same_metrics_as_an_uninterrupted_one(
        uninterrupted, tmp_path, capsys):
    run_dir = tmp_path / "killed"
    killed = stopped_run(run_dir, "SIGKILL")
    assert killed.returncode == -9, killed.stderr
    assert (run_dir / RESUME_POINT).is_file() and not (run_dir / "metrics.json").exists()

    spec = build_spec("speech", "gru", settings=SETTINGS)
    assert can_resume(run_dir, spec)  # what a sweep's final run checks before continuing
    assert not can_resume(run_dir, spec.with_settings({"lr": 0.02}))

    older = tmp_path / "older"  # a resume point of the loop before 8 batches per item
    shutil.copytree(run_dir, older)
    point = torch.load(older / RESUME_POINT, weights_only=False)
    del point[LOOP_KEY]
    torch.save(point, older / RESUME_POINT)
    assert not can_resume(older, spec)  # a sweep trains such a final again
    assert main(["run", "--resume", str(older), "--quiet"]) == 2
    assert "was written by an older seqbench, whose training loop this one does not " \
        "continue" in capsys.readouterr().err

    config = read_json(run_dir / "config.json")  # as if it had started on another machine
    config["environment"]["cpu"] = "Another CPU"
    (run_dir / "config.json").write_text(json.dumps(config))
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "differs from the run record's (cpu Another CPU -> " in printed.err
    resumed, reference = read_json(run_dir / "metrics.json"), read_json(uninterrupted /
                                                                        "metrics.json")
    assert {k: resumed[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}
    assert resumed["epochs"] < SETTINGS["epochs"]  # early stopping, restored, still stopped it
    assert history(run_dir) == history(uninterrupted)  # no epoch lost or logged twice
    assert not (run_dir / RESUME_POINT).exists()  # finished runs keep best.ckpt only
    assert f"Run record: {run_dir}" in printed.out


def test_ctrl_c_leaves_a_resumable_folder_and_says_how_to_resume(uninterrupted, tmp_path):
    run_dir = tmp_path / "interrupted"
    interrupted = stopped_run(run_dir, "SIGINT")
    assert interrupted.returncode == 130, interrupted.stderr
    assert f"seqbench run --resume {run_dir}" in interrupted.stderr
    assert "Traceback" not in interrupted.stderr

    from seqbench.api import run

    resumed = run(resume=run_dir, progress=False)
    reference = read_json(uninterrupted / "metrics.json")
    assert {k: resumed.metrics[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}
    assert len(resumed.history) == reference["epochs"]


def test_ctrl_c_in_the_test_pass_exits_130_and_resuming_tests_again(uninterrupted, tmp_path):
    run_dir = tmp_path / "testing"
    interrupted = stopped_run(run_dir, "SIGINT", phase="test")
    assert interrupted.returncode == 130, interrupted.stderr
    assert f"seqbench run --resume {run_dir}" in interrupted.stderr
    assert "Traceback" not in interrupted.stderr
    stopped = read_json(run_dir / "metrics.json")
    assert stopped["status"] == "interrupted"
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:  # the tracker got
        logged = [row for row in csv.DictReader(handle) if row.get("val_nll")]  # every epoch
    assert len(logged) == stopped["epochs"] > 0

    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    resumed, reference = read_json(run_dir / "metrics.json"), read_json(uninterrupted /
                                                                        "metrics.json")
    assert {k: resumed[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}


def test_what_cannot_be_resumed_is_one_line_that_says_why(uninterrupted, tmp_path, capsys):
    assert main(["run", "--resume", str(uninterrupted)]) == 2
    assert "has already ended (completed)" in capsys.readouterr().err

    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err

    early = tmp_path / "early"
    early.mkdir()
    (early / "config.json").write_text((uninterrupted / "config.json").read_text())
    assert main(["run", "--resume", str(early)]) == 2
    assert "before its first resume point; start it again with: seqbench run --task speech" \
        in capsys.readouterr().err

    assert main(["run", "--resume", str(early), "--task", "speech"]) == 2
    assert "give no other run options" in capsys.readouterr().err


def test_the_command_line_says_how_to_resume_and_exits_130_on_ctrl_c(toy_task, tmp_path):
    """Ctrl-C through the real command line once the run has a resume point: the last line
    is the run's own message (its folder, its epochs, the command that resumes it), and the
    exit code is 130."""
    import os
    import re
    import signal

    from test_sweep import wait_for

    out = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "seqbench", "run", "--task", toy_task, "--cell", "gru",
         "--quiet", "--set", "epochs=100000", "--set", "patience=0", "--output-dir", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_for(lambda: any(out.glob(f"*/{RESUME_POINT}")) or process.poll() is not None,
                 120, "a resume point")
    finally:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    (run_dir,) = out.iterdir()
    last = err.strip().splitlines()[-1]
    found = re.fullmatch(rf"interrupted: the run stopped after (\d+) finished epoch\(s\); kept "
                         rf"config\.json, history\.csv, best\.ckpt in {re.escape(str(run_dir))}\. "
                         rf"Continue it from epoch (\d+) with `seqbench run --resume "
                         rf"{re.escape(str(run_dir))}`\.", last)
    assert found, err
    stopped, resumable = map(int, found.groups())
    assert read_json(run_dir / "metrics.json") == {"status": "interrupted", "epochs": stopped}
    assert 1 <= resumable <= stopped


def test_a_sweep_continues_a_stopped_final_run_from_its_resume_point(tmp_path, monkeypatch):
    import shutil

    from lightning.pytorch.callbacks import Callback

    import seqbench.resume
    from seqbench.api import sweep
    from seqbench.runs import read_spec
    from seqbench.train import train

    def the_sweep():
        return sweep(task="speech", cells=["gru"], trials=1, seeds=1, output_dir=tmp_path,
                     epochs=6, min_epochs=0, hidden_size=16)

    from seqbench.reports.collect import collect

    (summary,) = collect(the_sweep().storage)[("speech", "japanese-vowels")]
    (final,) = [Path(record["run_dir"]) for record in summary.finals]
    reference = read_json(final / "metrics.json")

    class Crash(Callback):
        def on_train_batch_end(self, trainer, *args):
            if (final / RESUME_POINT).is_file() and trainer.current_epoch >= 3:
                raise RuntimeError("the machine went away")

    spec = read_spec(final)
    shutil.rmtree(final)
    monkeypatch.setattr(seqbench.resume, "ASSUMED_FIRST_COST", 0.0)
    with pytest.raises(RuntimeError, match="went away"):
        train(spec, run_dir=final, show_progress=False, callbacks=[Crash()])
    first_epoch = first_row(final)

    the_sweep()  # the same call again: the search is complete, the final continues
    resumed = read_json(final / "metrics.json")
    assert {k: resumed[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}
    assert first_row(final) == first_epoch  # its wall-clock time too: not trained again

    shutil.rmtree(final)
    with pytest.raises(RuntimeError, match="went away"):
        train(spec, run_dir=final, show_progress=False, callbacks=[Crash()])
    (final / RESUME_POINT).write_bytes(b"damaged by a full disk")
    the_sweep()  # a damaged resume point is not a dead end: the final is trained again
    again = read_json(final / "metrics.json")
    assert {k: again[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}


def first_row(run_dir: Path) -> dict[str, str]:
    with open(run_dir / "history.csv", newline="") as handle:
        return next(csv.DictReader(handle))
