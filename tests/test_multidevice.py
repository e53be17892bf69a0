"""The command that trains a sweep's run of several devices (`seqbench.sweeps.multidevice`):
what it inherits, how a stop reaches it, and how it says that it failed. The sweep that
uses it end to end is in tests/test_distributed.py."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from seqbench.errors import SeqbenchError
from seqbench.sweeps import multidevice
from seqbench.sweeps.multidevice import Job, launch_environment, main, train_launched


def test_the_launched_run_inherits_no_launcher_variables():
    """A worker's MASTER_PORT would make two workers' runs bind one port, and a SLURM task
    count would make Lightning take the run for a SLURM task of the wrong size."""
    environ = {"PATH": "/bin", "MASTER_PORT": "29500", "MASTER_ADDR": "node1", "RANK": "3",
               "LOCAL_RANK": "0", "WORLD_SIZE": "8", "TORCHELASTIC_RUN_ID": "x",
               "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "search", "CUDA_VISIBLE_DEVICES": "2,3"}
    launched = launch_environment(environ)
    assert launched == {"PATH": "/bin", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "interactive",
                        "CUDA_VISIBLE_DEVICES": "2,3"}
    assert launch_environment({"PATH": "/bin"}) == {"PATH": "/bin"}  # no SLURM, no name


def request(tmp_path) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(hparams={"devices": 2}),
                           run_dir=tmp_path / "run")


def launch_instead(monkeypatch, code: str) -> None:
    """Make `train_launched` start `python -c code` instead of the training command."""
    monkeypatch.setattr(multidevice, "command",
                        lambda job_file: [sys.executable, "-c", code, str(job_file)])


def test_a_stop_signal_reaches_the_run_as_its_graceful_stop_and_the_worker_waits(
        tmp_path, monkeypatch):
    """SIGTERM to the worker while the run trains: the run gets SIGTERM (its graceful stop:
    it writes its resume point), the worker waits until it has ended, then stops as Ctrl-C
    would. It used to be SIGKILLed 0.25 s later by `subprocess.run`."""
    started, ended = tmp_path / "started", tmp_path / "graceful"
    launch_instead(monkeypatch, (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    time.sleep(1)  # writing its resume point takes a while\n"
        f"    open({str(ended)!r}, 'w').write(str(signum))\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"open({str(started)!r}, 'w').close()\n"
        "time.sleep(60)\n"))

    def stop_the_worker_once_the_run_trains() -> None:
        while not started.exists():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_the_worker_once_the_run_trains, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        train_launched(request(tmp_path), {}, None, None, False)
    assert ended.read_text() == str(int(signal.SIGTERM))


def test_a_second_stop_kills_every_process_of_the_run(tmp_path, monkeypatch):
    """A run that does not stop (here it ignores SIGTERM) and has started a process of its
    own, as Lightning starts the other ranks: the second stop signal kills both, so no rank
    is left holding its device."""
    started, other_rank = tmp_path / "started", tmp_path / "other-rank"
    launch_instead(monkeypatch, (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "rank = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(other_rank)!r}, 'w').write(str(rank.pid))\n"
        f"open({str(started)!r}, 'w').close()\n"
        "time.sleep(60)\n"))

    def stop_twice_once_the_run_trains() -> None:
        while not started.exists():
            time.sleep(0.05)
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)

    threading.Thread(target=stop_twice_once_the_run_trains, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        train_launched(request(tmp_path), {}, None, None, False)
    pid = int(other_rank.read_text())
    deadline = time.monotonic() + 10
    while running(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the run's other process outlived the second stop")
        time.sleep(0.1)


def running(pid: int) -> bool:
    """Whether process `pid` still runs (a killed one no process has reaped yet is a zombie:
    it has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_run_that_dies_without_reporting_says_how_it_ended(tmp_path, monkeypatch):
    launch_instead(monkeypatch, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(SeqbenchError, match=r"the run on 2 devices in .*run ended \(killed by "
                                            r"SIGKILL\) before it reported"):
        train_launched(request(tmp_path), {}, None, None, False)


def test_a_trial_that_cannot_be_reopened_is_one_error_line_in_the_outcome(tmp_path):
    """The pickled pruning callback reopens its storage when the job is read; a storage that
    is no journal any more is the user's error, reported as the in-process sweep would."""
    from seqbench.sweeps.pruning import OptunaPruning
    from seqbench.sweeps.storage import open_storage

    journal = tmp_path / "s.journal"
    trial = optuna.create_study(study_name="x", storage=open_storage(str(journal))).ask()
    job_file = tmp_path / "launch" / "job.pickle"
    job_file.parent.mkdir()
    job_file.write_bytes(pickle.dumps(Job(
        request(tmp_path), {}, None, None, False,
        OptunaPruning(trial, "val_nll", storage=str(journal)))))
    journal.unlink()
    journal.mkdir()
    assert main(str(job_file)) == 2
    outcome = json.loads(job_file.with_name("outcome.json").read_text())
    assert "not a journal file" in outcome["error"]
