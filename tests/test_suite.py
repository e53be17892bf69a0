"""Suites as data: the shipped standard suite, its checks, its cost estimate, the CLI."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import seqbench as sb
from seqbench import SeqbenchError
from seqbench.cli import main
from seqbench.benchsuite import load_suite, suite_files
from seqbench.benchsuite.cost import (
    CANDIDATES,
    Calibration,
    Measurements,
    sweep_seconds,
    estimate,
    factors,
    format_measurements,
    read_measurements,
    rerun_seeds,
)
from seqbench.benchsuite.spec import parse_suite

GOOD = """
summary = "two datasets"
cells = ["lstm", "gru"]
optional_cells = ["not-installed-cell"]
[budget]
trials = 4
seeds = 2
[full_budget]
trials = 30
seeds = 5
[[datasets]]
task = "speech"
dataset = "japanese-vowels"
reason = "offline"
[[datasets]]
task = "forecasting"
dataset = "airline"
reason = "offline too"
trials = 40
epochs = 50
seeds = 5
repeats = 3
max_time = 90
"""


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_standard_suite_ships_with_at_least_24_datasets_over_every_task():
    suite = load_suite("standard")
    assert suite_files()["standard"] == suite.path and suite.path.name == "standard.toml"
    assert len(suite.datasets) >= 24 and suite.cells == ("lstm", "gru", "rnn")
    assert {d.task for d in suite.datasets} == {"speech", "music", "lm", "asr", "translation",
                                                "forecasting"}
    assert all(len(d.reason) > 20 for d in suite.datasets)
    assert "mingru" in suite.optional_cells  # the modern cells, where installed
    # WikiText-2's epochs take over 26 minutes on one thread: a suite of its own with PTB
    # and Tiny Shakespeare, under the standard suite's language-modelling budget
    language = load_suite("language")
    assert [d.name for d in language.datasets] == ["lm/ptb", "lm/wikitext2", "lm/shakespeare"]
    budgets = {d.name: (d.trials, d.seeds, d.epochs) for d in suite.datasets}
    assert all(budgets[d.name] == (d.trials, d.seeds, d.epochs) for d in language.datasets
               if d.name in budgets)


def test_a_suite_fills_budgets_and_says_what_is_reduced(tmp_path):
    suite = parse_suite(write(tmp_path, GOOD))
    vowels, airline = suite.datasets
    assert suite.name == "mine" and suite.cells == ("lstm", "gru")
    assert (vowels.trials, vowels.seeds, vowels.epochs, vowels.max_time) == (4, 2, 100, None)
    assert vowels.reductions() == ["4 of 30 trials", "2 of 5 seeds"]
    assert (airline.trials, airline.epochs, airline.max_time) == (40, 50, 90.0)
    assert (vowels.repeats, airline.repeats) == (1, 3)  # one search unless a budget says
    assert airline.reductions() == ["50 of 300 epochs", "90 s per run"]
    assert suite.installed_optional_cells() == ()


@pytest.mark.parametrize("change, message", [
    (("trials = 4", "trails = 4"), r"\[budget\] has no key 'trails'.*Did you mean 'trials'"),
    (("trials = 4", "trials = 0"), r"trials must be a whole number of at least 1, not 0"),
    (("trials = 4", "trials = true"), r"not True"),
    (("seeds = 2", "seeds = 2.5"), r"seeds must be a whole number"),
    (("repeats = 3", "repeats = 0"), r"repeats must be a whole number of at least 1"),
    (('dataset = "airline"', 'dataset = "airlines"'),
     r"datasets\[1\] \(forecasting/airlines\): task 'forecasting' has no dataset 'airlines'"),
    (('task = "speech"', 'task = "speach"'), r"unknown task 'speach'.*Did you mean 'speech'"),
    (('cells = ["lstm", "gru"]', 'cells = ["lstm", "gruu"]'), r"cells: unknown cell 'gruu'"),
    (('cells = ["lstm", "gru"]', "cells = []"), r"cells is empty"),
    (("max_time = 90", "max_time = -1"), r"max_time must be a number of seconds above 0"),
    (('reason = "offline"\n', ""), r"datasets\[0\] has no reason"),
    (('reason = "offline"', 'reason = " "'), r"reason must be a non-empty string"),
    (('task = "forecasting"\ndataset = "airline"', 'task = "speech"\ndataset = "japanese-vowels"'),
     r"speech/japanese-vowels is listed twice"),
    (('summary = "two datasets"', 'summary = "two datasets"\nsummery = 1'),
     r"has no key 'summery'"),
    (("[full_budget]\ntrials = 30\n", "[full_budget]\n"), r"\[full_budget\] has no trials"),
    (("seeds = 2", "seeds = 2\nseeds = 3"), r"is not valid TOML: .*line"),
])
def test_a_bad_suite_file_is_one_line_naming_the_file_and_entry(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SeqbenchError, match=message) as caught:
        parse_suite(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_lists_and_shows_suites_and_refuses_bad_files_in_one_line(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich's tables, unwrapped
    assert main(["suite", "list"]) == 0
    out = capsys.readouterr().out
    assert "standard" in out and "core-hours" in out and "lstm, gru, rnn" in out
    assert main(["suite", "show", str(write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "4 of 30 trials, 2 of 5 seeds" in out and "speech/japanese-vowels: offline" in out
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:6]]
            for line in out.splitlines() if line.startswith("│ ") and "/" in line}
    assert rows["forecasting/airline"] == ["40", "50", "5", "3"]  # trials, epochs, seeds, repeats
    assert rows["speech/japanese-vowels"][3] == "1"
    assert main(["suite", "show", "standrd"]) == 2
    assert "error: unknown suite 'standrd'. Did you mean 'standard'?" in capsys.readouterr().err
    assert main(["suite", "show", str(tmp_path / "none.toml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: suite file") and err.count("\n") == 1


def test_the_bound_counts_search_selection_and_finals_runs():
    seconds = {"lstm": 2.0, "gru": 3.0}
    # 10 trials and 4 candidates x 2 re-run seeds on 5 folds (2 seeds: 5 folds already give
    # the 5 paired values), 4 finals.
    runs = (10 + CANDIDATES * 2) * 5 + 4
    assert sweep_seconds(seconds, ("lstm", "gru"), 10, 4, 7, 5) == (runs * 7 * (2 + 3), 0)
    assert sweep_seconds(seconds, ("lstm", "gru"), 10, 4, 7, 5, max_time=10, setup=1.5) == (
        runs * (10 + 10), runs * 2 * 1.5)
    assert sweep_seconds(seconds, ("lstm", "rnn"), 10, 4, 7, 5) is None  # rnn not measured
    # One split: 5 re-run seeds per candidate, as the sweep takes them; 3 repeated searches
    # each make all of it (repeats that chose alike share finals: a bound).
    single = (10 + CANDIDATES * 5) + 4
    assert sweep_seconds(seconds, ("lstm",), 10, 4, 7, 1) == (single * 7 * 2, 0)
    assert sweep_seconds(seconds, ("lstm",), 10, 4, 7, 1, repeats=3) == (3 * single * 7 * 2, 0)
    assert (rerun_seeds(1), rerun_seeds(2), rerun_seeds(5)) == (5, 3, 2)


def test_calibrated_estimates_scale_the_epochs_by_how_early_finished_sweeps_stopped(tmp_path):
    key = ("speech", "japanese-vowels")
    seconds = {key: {"lstm": 1.0, "gru": 1.0}, ("forecasting", "airline"): {"lstm": 0.5,
                                                                            "gru": 0.5}}
    epochs, setup = sweep_seconds(seconds[key], ("lstm", "gru"), 30, 5, 100, 5, setup=2.0)
    took = (epochs / 4 + setup) / 60 / 2  # minutes with 2 jobs: a quarter of the epochs
    calibration = Calibration(*key, trials=30, seeds=5, rerun_seeds=2, epochs=100, jobs=2,
                              wall_minutes=took, cells=("lstm", "gru"), source="a test sweep")
    measurements = Measurements("a test machine", seconds,
                                {k: "measured" for k in seconds}, (calibration,), {key: 2.0})
    assert factors(measurements) == {"speech": pytest.approx(0.25)}
    suite = parse_suite(write(tmp_path, GOOD))
    vowels, airline = estimate(suite.datasets, suite.cells, measurements)
    runs = (4 + CANDIDATES * 2) * 5 + 2
    assert vowels.hours == pytest.approx(runs * (0.25 * 100 * 2 + 2 * 2.0) / 3600)
    assert vowels.bound_hours == pytest.approx(runs * (100 * 2 + 2 * 2.0) / 3600)
    assert airline.factor == 1.0  # no forecasting calibration: the bound
    path = tmp_path / "epoch-seconds.toml"
    path.write_text(format_measurements(measurements, "header line"))
    assert read_measurements(path) == measurements


def test_a_bad_measurements_file_is_one_line(tmp_path):
    path = write(tmp_path, "[machine]\ndescription = 'x'\n[speech.coffee]\nlstm = -1\n"
                           "how = 'measured'\n", "epoch-seconds.toml")
    with pytest.raises(SeqbenchError, match=r"\[speech.coffee\]: seconds must be"):
        read_measurements(path)
    path.write_text("[speech.coffee]\nlstm = 1\n")
    with pytest.raises(SeqbenchError, match=r"\[machine\] needs a description"):
        read_measurements(path)


def test_the_api_prices_every_shipped_suite_from_its_measurements():
    listing = sb.suites()["standard"]
    assert listing.machine and listing.hours > 0
    measured = read_measurements(listing.suite.path.parent / "epoch-seconds.toml").seconds
    # A dataset is priced exactly when every required cell's epoch time is measured, and
    # the listing names the others rather than pricing them at zero.
    assert listing.unmeasured == [d.name for d in listing.suite.datasets
                                  if not set(listing.suite.cells) <= set(
                                      measured.get((d.task, d.dataset), {}))]
    assert len(listing.unmeasured) < len(listing.suite.datasets) / 2
    assert all(cost.how for cost in listing.costs)
