"""results/ rebuilds from committed files alone: every published table equals the report that
its printed command writes today from the committed journal and final-run records."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqbench.reports import write_reports
from seqbench.reports.collect import collect

ROOT = Path(__file__).resolve().parents[1]
NUMBERS = ("table.csv", "pairwise.csv", "budget_curves.csv")
#: (journal, studies, reference cell, output folder, report folders): the free-tuning
#: sweeps, JSB and Nottingham with about 20k parameters per cell (as Chung et al. 2014
#: compared them), Greff et al.'s LSTM variants against the vanilla LSTM, the Japanese
#: Vowels sweep extended to 60 trials per cell, sequential digits (issue 43's twelve
#: models) and connected spoken digits transcribed with CTC, one way and both ways (issue 45).
PUBLISHED = [
    ("results/studies.journal", "jv,jsb,airline,m1,fsdd,etth1,shakespeare,nottingham", None,
     "results",
     ("speech-japanese-vowels", "speech-fsdd", "music-jsb", "forecasting-airline",
      "forecasting-m1-yearly", "forecasting-etth1", "lm-shakespeare", "music-nottingham")),
    ("results/studies.journal", "jsb20k,nottingham20k", None, "results/param-budget-20k",
     ("music-jsb", "music-nottingham")),
    ("results/lstm-variants/studies.journal", "greff", "lstm-vanilla", "results/lstm-variants",
     ("music-jsb",)),
    ("results/jv-60-trials/studies.journal", "jv", None, "results/jv-60-trials",
     ("speech-japanese-vowels",)),
    ("results/longrange-digits/studies.journal", "longrange", None,
     "results/longrange-digits", ("speech-digits",)),
    ("results/asr-connected-digits/studies.journal", "asr,asr-bi", None,
     "results/asr-connected-digits", ("asr-fsdd-connected",)),
]


@pytest.mark.parametrize("journal, studies, against, output, folders", PUBLISHED)
def test_every_published_report_is_what_its_printed_command_rebuilds(
        journal, studies, against, output, folders, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    command = (f"seqbench report --storage {journal} --study {studies} "
               + (f"--against {against} " if against else "") + f"--output-dir {output}")
    assert command in (ROOT / output / "index.html").read_text()
    rebuilt = {folder.name: folder for folder in write_reports(journal, tmp_path, study=studies,
                                                               against=against)}
    assert sorted(rebuilt) == sorted(folders)
    for name in folders:
        committed = ROOT / output / name
        for numbers in NUMBERS:
            assert (rebuilt[name] / numbers).read_text() == (committed / numbers).read_text()
        assert (rebuilt[name] / "table.md").read_text().replace(str(tmp_path), output) == \
            (committed / "table.md").read_text()
    assert (tmp_path / "ranking.csv").read_text() == (ROOT / output / "ranking.csv").read_text()
    for cells in collect(journal, studies).values():  # curves come from committed records
        assert all(len(cell.validation_curves()) == len(cell.finals) >= 3 and
                   len(cell.finals) + len(cell.diverged) == len(cell.seeds["final"])
                   for cell in cells)


def test_the_airline_page_opens_by_saying_a_baseline_beats_every_cell():
    """The best baseline leads the verdict (AutoARIMA since the statistical baselines were
    added to the published finals), and the table still lists the linear one."""
    page = (ROOT / "results" / "forecasting-airline" / "index.html").read_text()
    first = page.split("</h1>", 1)[1].split("</p>", 1)[0]
    assert "The auto_arima baseline beats every cell: test mase 0.5825" in first
    assert "linear (baseline)" in page
