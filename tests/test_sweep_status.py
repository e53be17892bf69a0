"""`seqbench status` (`sb.status`): where a sweep stands, read from its storage alone, counted
by the rules a resumed sweep follows, at each stage and for a published journal."""

from __future__ import annotations

from pathlib import Path

import pytest

import seqbench as sb
from seqbench.cli import main
from test_sweep import study_of, sweep

RESULTS = Path(__file__).resolve().parents[1] / "results"


def test_status_follows_a_sweep_from_its_search_to_its_finals(toy_task, tmp_path, capsys):
    out = tmp_path / "sweeps"
    journal = str(out / "sweeps.journal")
    sweep(capsys, out, "--cells", "gru,rnn", "--trials", "3", "--search-only")

    searched = sb.status(storage=journal)
    assert [row.cell for row in searched] == ["gru", "rnn"]
    for row in searched:
        assert (row.trials, row.budget, row.running) == (3, 3, 0)
        assert row.stage == "selection" and row.reruns == 0 and row.chosen is None
        # the best --top 3 and the defaults, 2 seeds each, unless too few completed
        assert row.planned_reruns in (0, 2 * 2, 3 * 2)
        assert (row.finals, row.planned_finals) == (0, 2)
        assert row.search_minutes > 0 and row.minutes_left > 0  # re-runs and finals to come

    sweep(capsys, out, "--cells", "gru,rnn", "--trials", "3")  # selection and finals
    for row in sb.status(storage=journal):
        assert row.stage == "done" and row.chosen is not None
        assert row.reruns == row.planned_reruns and (row.finals, row.diverged) == (2, 0)
        assert row.minutes_left == 0

    assert main(["status", "--storage", journal]) == 0
    shown = capsys.readouterr().out
    assert "seqbench/toymusic/tiny" in shown and "gru" in shown and "rnn" in shown
    assert shown.count("│ done") == 2 and "3/3" in shown and "2/2" in shown

    # the budget raised (as `--trials 4` on resuming records it): the search is not over,
    # so the selection and finals recorded are not counted, as the sweep would redo them
    study = study_of(out, "gru")
    study.set_user_attr("plan", {**study.user_attrs["plan"], "trials": 4})
    raised = sb.status(storage=journal)[0]
    assert (raised.stage, raised.trials, raised.budget) == ("search", 3, 4)
    assert (raised.chosen, raised.finals, raised.planned_reruns) == (None, 0, None)
    assert raised.minutes_left > 0


def test_status_reads_a_published_journal_and_names_the_diverged_final():
    rows = sb.status("asr", str(RESULTS / "asr-connected-digits" / "studies.journal"))
    assert {row.cell: (row.stage, row.finals, row.diverged) for row in rows} == {
        "gru": ("done", 5, 0), "lstm": ("done", 5, 0), "rnn": ("done", 5, 1)}
    # the defaults were among the LSTM's top 3, so three candidates, five seeds each
    assert {row.cell: row.planned_reruns for row in rows} == {"gru": 20, "lstm": 15, "rnn": 20}
    assert all(row.reruns == row.planned_reruns and row.minutes_left == 0 for row in rows)


def test_status_reads_a_version_1_study_that_kept_its_reruns_in_run_folders():
    rows = sb.status("airline,shakespeare", str(RESULTS / "studies.journal"))
    assert len(rows) == 6 and {row.stage for row in rows} == {"done"}
    assert {row.planned_finals for row in rows} == {5, 3}  # airline 5 seeds, shakespeare 3
    # nothing claimed about re-runs it did not record, and nothing left to train
    assert all(row.planned_reruns is None and row.minutes_left == 0 for row in rows)


@pytest.mark.parametrize("args, message", [
    (["--storage", "no/such.journal"], "no sweep storage at 'no/such.journal'"),
    (["--storage", "{journal}", "--study", "other"], "no 'other' studies in"),
])
def test_status_of_nothing_is_one_line_and_exit_2(args, message, capsys):
    journal = str(RESULTS / "asr-connected-digits" / "studies.journal")
    assert main(["status", *[a.format(journal=journal) for a in args]]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
