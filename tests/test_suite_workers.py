"""Many workers on one suite, the ways they can disagree or collide, without training: the
suite's sweep is replaced by a function that records what it was asked to sweep.

tests/test_suite_run.py runs real sweeps (two workers, a real kill); these cover what that
cannot reach in seconds: workers with other cells or budgets, a dataset one worker cannot
load, a full disk, two workers releasing the same dead claim, a claim released under a
live worker, heartbeats (failing, from the first moment, in a journal), the report written
once per output folder, a part of a suite run first, and `suite status`.
"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import optuna
import pytest

from seqbench.benchsuite import claims as suite_claims
from seqbench.benchsuite import load_suite
from seqbench.benchsuite.run import report_once, work_through
from seqbench.errors import SeqbenchError
from seqbench.sweeps.storage import fail_trial, open_storage
from test_suite_run import TINY

CELLS = ("lstm", "gru")


def suite_file(tmp_path: Path, text: str = TINY) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def storage(tmp_path):
    return open_storage(str(tmp_path / "sweeps.journal"))


def recorder(fail: str | None = None):
    """A suite sweep that records each dataset it is given; `fail` raises a one-line error
    for that dataset, as a missing data file does."""
    swept = []

    def sweep(item) -> None:
        if item.name == fail:
            raise SeqbenchError(f"{item.name}: data file missing here")
        swept.append(item.name)
    return sweep, swept


def test_a_worker_with_other_cells_or_budgets_is_refused_before_it_sweeps(tmp_path, storage):
    suite = load_suite(suite_file(tmp_path))
    sweep, swept = recorder()
    work_through(suite, CELLS, "tiny", storage, sweep, 0.01)
    assert swept == ["speech/unit-test", "speech/covid3-month_disc"]

    later, more = recorder()
    with pytest.raises(SeqbenchError, match=r"lacks cells gru \(an optional cell's package"):
        work_through(suite, ("lstm",), "tiny", storage, later, 0.01)
    grown = load_suite(suite_file(tmp_path / "other", TINY.replace("trials = 1", "trials = 2")
                                  .replace('epochs = 1\n[[datasets]]', 'epochs = 2\n[[datasets]]')))
    with pytest.raises(SeqbenchError) as refused:
        work_through(grown, CELLS, "tiny", storage, later, 0.01)
    message = str(refused.value)
    assert "speech/unit-test trials 1 -> 2" in message and "speech/unit-test epochs 1 -> 2" in \
        message and "--study NAME" in message and "\n" not in message
    assert more == []  # nothing swept under the other budget
    work_through(grown, CELLS, "grown", storage, later, 0.01)  # a new study is fine
    assert more == ["speech/unit-test", "speech/covid3-month_disc"]


def test_a_dataset_one_worker_cannot_sweep_is_left_to_the_others(tmp_path, storage):
    suite = load_suite(suite_file(tmp_path))
    sweep, swept = recorder(fail="speech/unit-test")
    with pytest.raises(SeqbenchError) as ended:
        work_through(suite, CELLS, "tiny", storage, sweep, 0.01)
    assert swept == ["speech/covid3-month_disc"]  # it went on with the next dataset
    assert "1 of 2 datasets could not be swept here (speech/unit-test: speech/unit-test: " \
           "data file missing here)" in str(ended.value)
    claims = suite_claims.open_claims(storage, "tiny", "speech", "unit-test")
    assert suite_claims.state(claims, storage) is suite_claims.State.FREE
    other, done = recorder()  # a worker that has the data takes it over
    work_through(suite, CELLS, "tiny", storage, other, 0.01)
    assert done == ["speech/unit-test"]


def test_two_workers_releasing_one_dead_claim_both_go_on(storage):
    first = optuna.create_study(study_name="claims", storage=storage)
    second = optuna.load_study(study_name="claims", storage=storage)
    trial = first.ask()
    assert fail_trial(first, trial.number) is True
    assert fail_trial(second, trial.number) is False  # already released: no error


def test_a_sweep_finished_under_a_released_claim_still_marks_the_dataset_done(storage):
    claims = suite_claims.open_claims(storage, "tiny", "speech", "unit-test")
    trial = suite_claims.claim(claims, storage)
    fail_trial(claims, trial.number)  # another worker took this one for dead
    suite_claims.finish(claims, trial)
    assert suite_claims.state(claims, storage) is suite_claims.State.DONE


def test_a_heartbeat_that_fails_once_keeps_beating(monkeypatch):
    beats = []

    class Flaky:
        def record_heartbeat(self, trial_id):
            beats.append(trial_id)
            if len(beats) == 1:
                raise ConnectionError("server closed the connection unexpectedly")

    class Trial:
        _trial_id = 7

    monkeypatch.setattr(suite_claims, "has_heartbeat", lambda storage: True)
    monkeypatch.setattr(suite_claims, "HEARTBEAT_SECONDS", 0.01)
    done = threading.Event()
    with suite_claims.heartbeat(Flaky(), Trial()):
        done.wait(0.2)
    assert len(beats) >= 3 and set(beats) == {7}


def test_workers_sharing_an_output_folder_write_the_report_once(tmp_path):
    url = str(tmp_path / "sweeps.journal")
    folder = tmp_path / "reports" / "tiny"
    written = []

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        written.append(1)

    workers = [threading.Thread(target=report_once, args=(url, "tiny", folder, '{"a": 0}', write))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert written == [1]
    report_once(url, "tiny", folder, '{"a": 4}', write)  # more work since: written again
    assert written == [1, 1]


def test_a_claim_beats_from_the_moment_it_is_taken_so_a_dead_machine_s_is_released(tmp_path):
    """In an RDB storage a claim whose worker died before its sweep began (so before the
    heartbeat thread started) must still go stale; a claim without any heartbeat never
    would, and its dataset would wait forever."""
    import time

    from seqbench.sweeps.storage import WORKER_ATTR

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'claims.db'}",
                                         heartbeat_interval=1, grace_period=1)
    claims = suite_claims.open_claims(storage, "tiny", "speech", "unit-test")
    trial = suite_claims.claim(claims, storage)
    trial.set_user_attr(WORKER_ATTR, "another-machine:4242")  # then that machine went down
    assert suite_claims.state(claims, storage) is suite_claims.State.HELD
    time.sleep(2.5)
    assert suite_claims.state(claims, storage) is suite_claims.State.FREE


def test_a_journal_claim_of_a_host_gone_quiet_is_released_and_a_live_one_kept(storage,
                                                                             monkeypatch):
    """A journal shared over a network file system, or a container started again under a
    new host name: the claim's process cannot be looked up, so its beats decide."""
    import os
    import time

    from seqbench.sweeps.storage import WORKER_ATTR, this_worker

    monkeypatch.setattr(suite_claims, "STALE_SECONDS", 60)
    host = this_worker().rpartition(":")[0]
    for owner, age, held in ((f"{host}-old-container:17", 61, False),
                             (f"{host}-old-container:17", 5, True),
                             (f"{host}:{os.getppid()}", 3600, True)):  # here: its pid decides
        claims = optuna.create_study(storage=storage)
        trial = suite_claims.claim(claims, storage)
        trial.set_user_attr(WORKER_ATTR, owner)
        trial.set_user_attr(suite_claims.BEAT_ATTR, time.time() - age)
        expected = suite_claims.State.HELD if held else suite_claims.State.FREE
        assert suite_claims.state(claims, storage) is expected, (owner, age)


def test_a_full_disk_stops_the_worker_not_just_the_dataset(tmp_path, storage):
    """A write the disk refused is this machine's trouble: going on would fail every
    dataset in turn, so the worker stops at once and frees its claim."""
    from seqbench.errors import WriteFailed

    suite = load_suite(suite_file(tmp_path))
    attempts = []

    def sweep(item) -> None:
        attempts.append(item.name)
        raise WriteFailed("no space left on the device", tmp_path)

    with pytest.raises(WriteFailed):
        work_through(suite, CELLS, "tiny", storage, sweep, 0.01)
    assert attempts == ["speech/unit-test"]
    claims = suite_claims.open_claims(storage, "tiny", "speech", "unit-test")
    assert suite_claims.state(claims, storage) is suite_claims.State.FREE


def test_status_reads_each_dataset_s_state_from_the_storage_and_changes_nothing(
        tmp_path, capsys, monkeypatch):
    import seqbench as sb
    from seqbench.cli import main
    from seqbench.sweeps.storage import WORKER_ATTR

    monkeypatch.setenv("COLUMNS", "200")
    path = suite_file(tmp_path)
    out = tmp_path / "out"
    assert main(["suite", "status", str(path), "--output-dir", str(out)]) == 2
    assert "no storage at" in capsys.readouterr().err
    storage = open_storage(str(out / "sweeps.journal"))
    claims = suite_claims.open_claims(storage, "tiny", "speech", "unit-test")
    suite_claims.claim(claims, storage).set_user_attr(WORKER_ATTR, "elsewhere:9")
    before = (out / "sweeps.journal").read_bytes()
    rows = sb.suite_status(path, output_dir=out)
    assert [(row.state, row.trials, row.finals) for row in rows] == [
        ("being swept by elsewhere:9", (0, 2), (0, 4)), ("not begun", (0, 2), (0, 4))]
    assert all(row.hours is None and row.hours_left is None for row in rows)  # not measured
    assert main(["suite", "status", str(path), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "being swept by elsewhere:9" in printed and "0 of 2 datasets done, 1 being swept" \
        in printed
    assert (out / "sweeps.journal").read_bytes() == before  # it only reads


def test_hours_left_scale_the_estimate_by_the_runs_still_to_come(tmp_path):
    from seqbench.benchsuite.progress import CellProgress, DatasetProgress

    item = load_suite(suite_file(tmp_path)).datasets[0]  # 1 trial and 2 seeds per cell
    cells = (CellProgress("lstm", 1, 2), CellProgress("gru", 1, 0))
    begun = DatasetProgress(item, "begun, no worker on it", cells, hours=6.0)
    assert begun.trials == (2, 2) and begun.finals == (2, 4)
    assert begun.hours_left == pytest.approx(6.0 * (1 - 4 / 6))
    assert DatasetProgress(item, "done", cells, hours=6.0).hours_left == 0.0


def test_a_part_of_a_suite_runs_first_and_the_rest_joins_it(tmp_path, storage):
    suite = load_suite(suite_file(tmp_path))
    sweep, swept = recorder()
    work_through(suite, CELLS, "tiny", storage, sweep, 0.01,
                 suite.only("speech/covid3-month_disc"))
    assert swept == ["speech/covid3-month_disc"]
    work_through(suite, CELLS, "tiny", storage, sweep, 0.01)  # the whole suite: the rest
    assert swept == ["speech/covid3-month_disc", "speech/unit-test"]
    with pytest.raises(SeqbenchError, match="suite 'tiny' has no dataset 'speech/coffee'"):
        suite.only(["speech/coffee"])
