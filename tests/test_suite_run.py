"""Running a suite: every dataset's sweep in one storage, shared by workers, resumable after
a real kill, ending with the cross-dataset report.

The tiny suite is two small UCR archive sets that ship with aeon (offline, no validation
folds), two cells, one trial of one epoch and two final seeds: seconds per dataset.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import seqbench as sb
from seqbench.benchsuite import claims as suite_claims
from seqbench.sweeps.storage import open_storage

TINY = """
summary = "two tiny archive sets, one trial of one epoch"
cells = ["lstm", "gru"]
[budget]
trials = 1
seeds = 2
[full_budget]
trials = 30
seeds = 5
[[datasets]]
task = "speech"
dataset = "unit-test"
reason = "22 test series of 24 steps: the smallest set aeon ships"
epochs = 1
[[datasets]]
task = "speech"
dataset = "covid3-month_disc"
reason = "84 steps, 61 test series: small too"
epochs = 1
"""
#: Report columns that must not depend on who ran what when (not timings, not the count of
#: trials a kill failed).
COMPARED = ("cell", "test_mean", "ci_low", "ci_high", "test_std", "seeds", "val_search",
            "parameters", "top", "better_than")
DATASETS = ("speech-unit-test", "speech-covid3-month_disc")


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(TINY))
    return path


def report_of(folder: Path) -> dict[str, list[dict[str, str]]]:
    """The parts of a suite's report that a rerun must reproduce."""
    tables = {}
    for name in DATASETS:
        with open(folder / name / "table.csv", newline="") as handle:
            tables[name] = [{k: row[k] for k in COMPARED} for row in csv.DictReader(handle)]
    with open(folder / "ranking.csv", newline="") as handle:
        tables["ranking"] = list(csv.DictReader(handle))
    return tables


def test_a_suite_runs_every_dataset_into_one_storage_and_ends_with_the_report(tiny, tmp_path):
    folder = sb.suite(tiny, output_dir=tmp_path / "out")
    assert folder == tmp_path / "out" / "reports" / "tiny"
    assert (folder / "index.html").is_file()
    report = report_of(folder)
    assert {row["cell"] for row in report["ranking"]} == {"lstm", "gru"}
    assert {(row["task"], row["dataset"]) for row in report["ranking"]} >= {
        ("speech", "unit-test"), ("speech", "covid3-month_disc")}
    import optuna

    names = set(optuna.get_all_study_names(open_storage(str(tmp_path / "out" /
                                                            "sweeps.journal"))))
    assert {f"tiny/speech/{d}/{c}" for d in ("unit-test", "covid3-month_disc")
            for c in ("lstm", "gru")} <= names
    assert {suite_claims.claims_name("tiny", "speech", d) for d in ("unit-test",
                                                                    "covid3-month_disc")} <= names
    # Run again: everything is done, nothing trains, the same report is written.
    assert report_of(sb.suite(tiny, output_dir=tmp_path / "out")) == report
    status = sb.suite_status(tiny, output_dir=tmp_path / "out")
    assert [(row.dataset.name, row.state, row.trials, row.finals) for row in status] == [
        (name, "done", (2, 2), (4, 4)) for name in ("speech/unit-test",
                                                    "speech/covid3-month_disc")]
    assert [c.cell for c in status[0].cells] == ["lstm", "gru"]
    assert all(row.hours_left == 0.0 for row in status)  # done: nothing left to run


def test_a_part_of_a_suite_runs_first_with_a_report_of_what_is_done(tiny, tmp_path, capsys):
    from seqbench.cli import main

    assert main(["suite", "run", str(tiny), "--output-dir", str(tmp_path / "out"),
                 "--datasets", "speech/unit-test"]) == 0
    assert "all 1 datasets asked for done" in capsys.readouterr().err
    folder = tmp_path / "out" / "reports" / "tiny"
    assert (folder / "speech-unit-test" / "table.csv").is_file()
    assert not (folder / "speech-covid3-month_disc").exists()
    assert [row.state for row in sb.suite_status(tiny, output_dir=tmp_path / "out")] == [
        "done", "not begun"]


def test_two_workers_share_a_suite_and_a_killed_one_resumes_to_the_same_report(tiny, tmp_path):
    reference = report_of(sb.suite(tiny, output_dir=tmp_path / "alone"))
    shared = tmp_path / "shared"

    def worker() -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "seqbench", "suite", "run", str(tiny), "--output-dir",
             str(shared), "--poll-seconds", "0.5"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "300"})

    first, second = worker(), worker()
    output = []
    # Kill the first worker once it has tested a final run: mid-dataset, after its search
    # (a trial killed mid-run is sampled again, by the sweep's design, so a kill there would
    # change the one-trial budget's configuration, not lose work).
    for line in first.stdout:
        output.append(line)
        if "final seed" in line:
            os.kill(first.pid, signal.SIGKILL)
            break
    first.wait()
    assert first.returncode == -signal.SIGKILL, "".join(output)
    # The second worker keeps going; the first, run again, joins it and takes over its own
    # dataset (its claim died with it) unless the second got there first.
    resumed = worker()
    rest = {}
    readers = [threading.Thread(target=lambda p=p: rest.setdefault(p.pid, p.stdout.read()))
               for p in (second, resumed)]
    for reader in readers:
        reader.start()
    for process in (second, resumed):
        assert process.wait(timeout=600) == 0, rest.get(process.pid)
    for reader in readers:
        reader.join()
    assert all("all 2 datasets done" in text for text in rest.values()), rest
    assert report_of(shared / "reports" / "tiny") == reference
