"""Sweeps and reports on the tiny synthetic task: budgets, resumption, kill -9, many workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from seqbench.cli import main
from seqbench.sweeps import record
from seqbench.sweeps.storage import open_storage

FAST = ["--task", "toymusic", "--epochs", "2", "--seeds", "2", "--rerun-seeds", "2"]


def sweep(capsys, out: Path, *args) -> str:
    code = main(["sweep", "--output-dir", str(out), *FAST, *map(str, args)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out + captured.err


def study_of(out: Path, cell: str, study: str = "seqbench"):
    storage = open_storage(str(out / "sweeps.journal"))
    return optuna.load_study(study_name=f"{study}/toymusic/tiny/{cell}", storage=storage)


def trials_of(out: Path, cell: str, study: str = "seqbench"):
    return study_of(out, cell, study).trials


def finished(trials):
    return [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]


def test_a_sweep_searches_every_cell_then_runs_finals_and_resumes_exactly(
    toy_task, tmp_path, capsys
):
    out = tmp_path / "sweeps"
    sweep(capsys, out, "--cells", "gru,rnn", "--trials", "3")
    for cell in ("gru", "rnn"):
        assert len(finished(trials_of(out, cell))) == 3
        recorded = record.read(study_of(out, cell).user_attrs)
        finals = sorted((out / "finals" / "seqbench" / "toymusic-tiny" / cell).iterdir())
        assert [f.name for f in finals] == sorted(f"seed{s}" for s in recorded.final_seeds)
        searched = {json.loads(p.read_text())["spec"]["seed"]
                    for p in out.glob(f"*/seqbench/toymusic-tiny/{cell}/trial-*/config.json")}
        assert len(searched) > 3 and not searched & set(recorded.final_seeds)  # apart
        for final in finals:
            metrics = json.loads((final / "metrics.json").read_text())
            assert metrics["status"] == "completed" and "test_nll" in metrics
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("finals/**/metrics.json")}

    sweep(capsys, out, "--cells", "gru,rnn", "--trials", "3")  # the same command again
    assert [len(trials_of(out, c)) for c in ("gru", "rnn")] == [3, 3]
    assert {p: p.stat().st_mtime_ns for p in out.glob("finals/**/metrics.json")} == stamps

    before = {t.number: t.params for t in trials_of(out, "gru")}
    sweep(capsys, out, "--cells", "gru", "--trials", "5")  # a bigger budget: only the rest
    after = trials_of(out, "gru")
    assert len(finished(after)) == 5 and len(after) == 5
    assert {t.number: t.params for t in after if t.number in before} == before


def test_report_writes_tables_plots_and_the_commands_behind_them(toy_task, tmp_path, capsys):
    out = tmp_path / "sweeps"
    sweep(capsys, out, "--cells", "gru,rnn", "--trials", "3", "--pruner", "none")
    report_dir = tmp_path / "report"
    code = main(["report", "--storage", str(out / "sweeps.journal"), "--output-dir",
                 str(report_dir)])
    assert code == 0, capsys.readouterr().err
    folder = report_dir / "toymusic-tiny"
    names = {p.name for p in folder.iterdir()}
    assert {"table.md", "table.csv", "table.tex", "pairwise.csv", "budget_curves.csv",
            "budget_curves.png", "test_metric.png", "optimization_history.png",
            "validation_curves.png", "importance.json"} <= names
    table = (folder / "table.md").read_text()
    for cell in ("gru", "rnn"):  # a row each, "(defaults)" where the defaults were kept
        assert re.search(rf"^\| {cell}( \(defaults\))? \|", table.replace("**", ""), re.M)
    assert "95% CI" in table and "Holm-corrected over 1 pair, and" in table and "3/0/0" in table
    assert "Code: gru, rnn from seqbench " in table and "task toymusic from toy-music 1.0" in table
    assert "seqbench sweep --task toymusic --dataset tiny --cells gru,rnn --trials 3" in table
    assert f"seqbench report --storage {out / 'sweeps.journal'}" in table
    rows = (folder / "table.csv").read_text().splitlines()
    assert rows[0].startswith("cell,test_mean,ci_low,ci_high") and len(rows) == 5
    assert rows[3].startswith("per_key_marginal (baseline),")  # two cells, two baselines
    # the finals scored their test items: seeds and items, the item-level test beside
    assert "test sampling (the " in table and "the paired permutation test, because" in table
    assert "\\begin{tabular}" in (folder / "table.tex").read_text()


def test_repeated_searches_share_the_storage_and_the_report_lists_each_repeat(
    toy_task, tmp_path, capsys
):
    """`--repeats 2`: a second, independent search per cell (its own sampler and trial
    seeds) in the same storage, with its own selection and finals on the same final seeds,
    so a report can split the search's variance from the seeds'."""
    from seqbench.reports import write_reports
    from seqbench.reports.collect import collect

    out = tmp_path / "sweeps"
    sweep(capsys, out, "--cells", "gru", "--trials", "3", "--repeats", "2", "--pruner", "none")
    first, second = study_of(out, "gru"), study_of(out, "gru/repeat-1")
    assert [len(finished(s.trials)) for s in (first, second)] == [3, 3]
    assert first.trials[2].params != second.trials[2].params  # its own sampler seed

    def seeds_of(repeat_folder: str) -> set[int]:
        return {json.loads(p.read_text())["spec"]["seed"] for p in
                (out / "trials" / "seqbench" / "toymusic-tiny" / repeat_folder).glob(
                    "trial-*/config.json")}

    assert seeds_of("gru").isdisjoint(seeds_of("gru/repeat-1"))  # its own trial seeds
    (summary,) = collect(str(out / "sweeps.journal"))[("toymusic", "tiny")]
    (repeat,) = summary.repeats
    assert repeat.record.repeat == 1 and len(repeat.finals) == 2
    assert [f["seed"] for f in repeat.finals] == [f["seed"] for f in summary.finals]
    for ours, theirs in zip(summary.finals, repeat.finals):  # same configuration, same run
        assert (ours["run_dir"] == theirs["run_dir"]) == (ours["trial"] == theirs["trial"]
                                                          and first.trials[ours["trial"]].params
                                                          == second.trials[theirs["trial"]].params)
    (folder,) = write_reports(str(out / "sweeps.journal"), tmp_path / "report")
    table = (folder / "table.md").read_text()
    assert "## Repeated searches" in table
    assert "The ranking by mean (gru, best first) is the same in all 2 searches." in table


def test_the_repeats_section_says_when_the_ranking_depends_on_the_search():
    from types import SimpleNamespace

    from seqbench.reports import repeats

    def search(values, chosen):
        return SimpleNamespace(test_values=values,
                               record=SimpleNamespace(selection=SimpleNamespace(chosen=chosen)))

    def cell(name, first, *others):
        return SimpleNamespace(cell=name, direction="maximize", primary_metric="accuracy",
                               repeats=list(others), **vars(first))

    lstm = cell("lstm", search([0.90, 0.92], 4), search([0.80, 0.82], 7))
    gru = cell("gru", search([0.85, 0.87], 2), search([0.85, 0.87], 2))
    lines = repeats.markdown([lstm, gru])
    assert "| lstm | 4, 0.91 | 7, 0.81 | 0.07071 | 0.01414 |" in lines
    assert "| gru | 2, 0.86 | 2, 0.86 | 0 | 0.01414 |" in lines
    assert lines[-2].endswith("(gru > lstm; lstm > gru): the order of these cells depends on "
                              "the search's luck.")
    assert repeats.markdown([cell("gru", search([0.85], 2))]) == []  # no repeats: no section


def test_diverging_trials_are_pruned_with_the_reason_and_the_sweep_goes_on(
    toy_task, tmp_path, capsys
):
    out = tmp_path / "sweeps"
    sweep(capsys, out, "--cells", "rnn", "--trials", "2", "--seeds", "1", "--set", "lr=90",
          "--set", "optimizer=sgd", "--set", "clip=0", "--set", "cell.nonlinearity=relu",
          "--set", "hidden_size=64")
    trials = trials_of(out, "rnn")
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(t.user_attrs["reason"].startswith("diverged:") for t in trials)


def test_a_parameter_budget_gives_each_cell_a_matching_size(toy_task, tmp_path, capsys):
    out = tmp_path / "sweeps"
    sweep(capsys, out, "--cells", "lstm,gru,rnn", "--trials", "1", "--seeds", "1",
          "--param-budget", "5000", "--set", "layers=1")
    sizes = {}
    for cell in ("lstm", "gru", "rnn"):
        (trial,) = trials_of(out, cell)
        assert "hidden_size" not in trial.params
        sizes[cell] = trial.user_attrs["settings"]["hidden_size"]
        assert 4000 < trial.user_attrs["parameters"] <= 5000
    assert sizes["lstm"] < sizes["gru"] < sizes["rnn"]  # fewer gates, more units


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cells", "lstm,gruu"], "unknown cell 'gruu'. Did you mean 'gru'?"),
        (["--cells", "lstm", "--pruner", "sometimes"], "unknown pruner 'sometimes'"),
        (["--cells", "lstm", "--trials", "0"], "--trials must be at least 1"),
        (["--cells", "lstm", "--set", "lr=-1"], "below the minimum"),
        (["--cells", "lstm", "--storage", "postgresql://nobody@127.0.0.1:9/none"],
         "cannot open storage"),
    ],
)
def test_bad_sweep_input_is_one_line_and_exit_2(toy_task, tmp_path, capsys, args, message):
    code = main(["sweep", "--output-dir", str(tmp_path / "s"), *FAST, *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def sweep_process(out: Path, *args) -> subprocess.Popen:
    command = [sys.executable, "-m", "seqbench", "sweep", "--output-dir", str(out),
               "--task", "toymusic", "--seeds", "1", "--pruner", "none", "--rerun-seeds", "0",
               *map(str, args)]
    # One thread each: busy-waiting OpenMP threads of parallel processes starve each other.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sweep_killed_mid_trial_resumes_with_every_completed_trial_intact(toy_task, tmp_path):
    out = tmp_path / "sweeps"
    # Trials of two seconds each: long enough to be caught running, short enough to redo.
    args = ["--cells", "gru", "--trials", "3", "--max-time", "2", "--set", "epochs=100000",
            "--set", "patience=0"]
    worker = sweep_process(out, *args)

    def one_done_one_running():
        try:
            states = [t.state.name for t in trials_of(out, "gru")]
        except (KeyError, FileNotFoundError):  # the study does not exist yet
            return False
        return "COMPLETE" in states and "RUNNING" in states

    try:
        wait_for(one_done_one_running, 240, "a completed and a running trial")
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
    done_before = {t.number: (t.params, t.value) for t in trials_of(out, "gru")
                   if t.state.name == "COMPLETE"}

    resumed = sweep_process(out, *args)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()
    trials = trials_of(out, "gru")
    assert {t.number: (t.params, t.value) for t in trials if t.number in done_before} == \
        done_before
    assert len([t for t in trials if t.state.name == "COMPLETE"]) == 3
    assert [t.state.name for t in trials].count("FAIL") == 1  # the killed one, re-done


@pytest.fixture
def postgres_url():
    url = os.environ.get("SEQBENCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server: .ci/run starts one and sets SEQBENCH_TEST_POSTGRES_URL")
    return url


@pytest.mark.slow  # 30 s; tests/test_workers.py runs eight workers on one PostgreSQL study
def test_two_workers_share_one_postgres_study(toy_task, tmp_path, postgres_url):
    """Each trial runs for a fixed 6 seconds, so the four trials take one worker at least
    24 s: far longer than the other takes to start. With 8-epoch toy trials one worker
    could finish the study before the other had imported torch (CI saw it once)."""
    study = f"pg{os.getpid()}x{time.time_ns()}"
    args = ["--cells", "gru", "--trials", "4", "--max-time", "6", "--top", "1",
            "--set", "epochs=100000", "--set", "patience=0",
            "--storage", postgres_url, "--study", study]
    workers = [sweep_process(tmp_path / f"machine{i}", *args) for i in range(2)]
    for worker in workers:
        assert worker.wait(timeout=600) == 0, worker.stderr.read().decode()
    loaded = optuna.load_study(study_name=f"{study}/toymusic/tiny/gru",
                               storage=open_storage(postgres_url))
    complete = [t for t in loaded.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both machines did trials


def test_a_time_budget_caps_every_trial(toy_task, tmp_path, capsys):
    out = tmp_path / "sweeps"
    code = main(["sweep", "--output-dir", str(out), "--task", "toymusic", "--cells", "gru",
                 "--trials", "2", "--seeds", "1", "--max-time", "1", "--set", "epochs=100000",
                 "--set", "patience=0", "--pruner", "none", "--rerun-seeds", "0"])
    assert code == 0, capsys.readouterr().err
    for trial in trials_of(out, "gru"):
        assert trial.state.name == "COMPLETE"
        assert 1 <= trial.user_attrs["epochs"] < 100000


def test_a_worker_stopped_by_ctrl_c_or_sigterm_exits_130_without_a_traceback():
    """A run turns the stop into `Interrupted`; in a worker process that used to escape as a
    traceback per worker. The parent prints what was kept."""
    import multiprocessing

    from seqbench.errors import Interrupted
    from seqbench.sweeps.workers import Job, _child

    def stopped():
        raise Interrupted("the run stopped after 3 finished epoch(s)")

    receive, send = multiprocessing.Pipe(duplex=False)
    with pytest.raises(SystemExit) as exit_info:
        _child(Job("stopped", stopped), False, send)
    assert exit_info.value.code == 130 and not receive.poll()


def test_a_worker_that_cannot_write_a_folder_sends_one_line_not_a_traceback(tmp_path):
    """A read-only trials folder under --jobs 2 gave 64 tracebacks, then "worker died 4
    times ... (is the machine out of memory?)": the wrong cause. The OS error is the
    user's to fix, so it comes back as the one error line, naming the folder."""
    import errno
    import multiprocessing

    from seqbench.sweeps.workers import Job, _child

    folder = tmp_path / "trials"

    def read_only():
        raise OSError(errno.EROFS, "Read-only file system", str(folder))

    receive, send = multiprocessing.Pipe(duplex=False)
    with pytest.raises(SystemExit) as exit_info:
        _child(Job("trial", read_only), False, send)
    assert exit_info.value.code == 2
    assert receive.recv() == f"cannot use '{folder}': the file system is read-only."


@pytest.mark.parametrize("direction, best_so_far, values, reported", [
    ("minimize", True, [3.0, 2.0, 4.0, float("nan"), 1.5], [3.0, 2.0, 2.0, 2.0, 1.5]),
    ("maximize", True, [0.5, 0.9, 0.7], [0.5, 0.9, 0.9]),
    ("minimize", False, [3.0, 2.0, 4.0], [3.0, 2.0, 4.0]),  # a study started before
])
def test_pruning_compares_each_trial_by_its_best_value_so_far(direction, best_so_far, values,
                                                              reported):
    """A trial is worth what its best epoch is worth, so the pruner sees the running best,
    not an overfitting epoch's value (benchmarks/pruning.py measures what this saves);
    a study that began with the epoch's own value keeps it, so all its trials are alike."""
    from types import SimpleNamespace

    from seqbench.sweeps.pruning import OptunaPruning

    trial = optuna.create_study(direction=direction).ask()
    pruning = OptunaPruning(trial, "val_nll", best_so_far=best_so_far)
    for epoch, value in enumerate(values):
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=epoch, global_step=epoch,
                                  should_stop=False, is_global_zero=True, world_size=1)
        module = SimpleNamespace(last_metrics={"val": {"val_nll": value}})
        pruning.on_validation_end(trainer, module)
    stored = trial.study.trials[0].intermediate_values
    assert [stored[step] for step in sorted(stored)] == reported


def test_the_pruning_callback_moves_to_another_process_with_its_trial(tmp_path):
    """A sweep's run on several devices is trained by a command of its own: the pickled
    callback reloads its trial from the storage, keeps its pruner and running best, and only
    the first of the run's processes reports, the decision reaching every process."""
    import pickle
    from types import SimpleNamespace

    from seqbench.errors import SeqbenchError
    from seqbench.sweeps.pruning import OptunaPruning
    from seqbench.sweeps.storage import open_storage

    journal = str(tmp_path / "s.journal")
    pruner = optuna.pruners.ThresholdPruner(upper=1.0)  # prunes any value above 1
    study = optuna.create_study(study_name="x", storage=open_storage(journal), pruner=pruner)
    trial = study.ask()
    with pytest.raises(SeqbenchError, match="without its storage's address"):
        pickle.dumps(OptunaPruning(trial, "val_nll"))
    original = OptunaPruning(trial, "val_nll", storage=journal)
    original.best_so_far = 1.5  # the running best travels with the callback
    shipped = pickle.dumps(original)
    moved = pickle.loads(shipped)
    assert moved.trial.number == trial.number and isinstance(moved.trial.study.pruner,
                                                             optuna.pruners.ThresholdPruner)
    assert moved.best_so_far == 1.5

    def stored() -> dict[int, float]:
        study = optuna.load_study(study_name="x", storage=open_storage(journal))
        return study.trials[0].intermediate_values

    def validate(rank: int, value: float, broadcast) -> bool:
        """One process's copy of the callback at the end of epoch 1: whether it stops."""
        trainer = SimpleNamespace(
            sanity_checking=False, current_epoch=0, global_step=1, should_stop=False,
            is_global_zero=rank == 0, world_size=2, strategy=SimpleNamespace(
                broadcast=broadcast))
        copy = pickle.loads(shipped)  # every process unpickles its own
        copy.on_validation_end(trainer, SimpleNamespace(last_metrics={"val": {"val_nll": value}}))
        return trainer.should_stop

    sent = []

    def from_rank_0(value, src):  # what rank 0 broadcast: here, "prune"
        sent.append((value, src))
        return True

    assert validate(1, 0.5, from_rank_0)  # rank 1's own value would not prune; it follows
    assert stored() == {}  # and reports nothing
    assert validate(0, 2.0, lambda value, src: sent.append((value, src)) or value)
    assert sent[-1] == (True, 0)  # rank 0 broadcast its own decision: 1.5 is above 1
    assert stored() == {1: 1.5}  # reported once, by rank 0: the running best, not 2.0


def test_a_trial_the_task_refuses_is_logged_in_one_line_without_a_traceback():
    """Optuna logs a failed trial with its traceback; a SeqbenchError is the user's to fix
    and its message is already on Optuna's line, so the traceback is dropped. A bug keeps
    its traceback, and Ctrl-C is not logged at all (the CLI says what was kept)."""
    import logging

    from seqbench.errors import SeqbenchError
    from seqbench.sweeps.storage import quiet_optuna

    quiet_optuna()
    handler = logging.getLogger("optuna").handlers[0]  # Optuna's own, to stderr

    def failed_trial(error: BaseException) -> logging.LogRecord:
        try:
            raise error
        except BaseException:
            return logging.LogRecord("optuna", logging.WARNING, __file__, 1, "Trial 3 failed",
                                     None, sys.exc_info())

    refused, bug = failed_trial(SeqbenchError("too short")), failed_trial(ValueError("bug"))
    assert handler.filter(refused) and refused.exc_info is None
    assert handler.filter(bug) and bug.exc_info is not None
    assert not handler.filter(failed_trial(KeyboardInterrupt()))
