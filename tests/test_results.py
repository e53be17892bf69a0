"""results/ rebuilds from committed files alone: every published table equals the report that
its printed command writes today from the committed journal and final-run records."""

from __future__ import annotations

from pathlib import Path

import pytest

from seqbench.reports import write_reports
from seqbench.reports.collect import collect

ROOT = Path(__file__).resolve().parents[1]
#: (journal, study, report folder) of every published sweep, as the tables' commands say.
PUBLISHED = [
    ("results/sweeps/jv/sweeps.journal", "jv", "results/speech", "speech-japanese-vowels"),
    ("results/sweeps/jsb/sweeps.journal", "jsb", "results/music", "music-jsb"),
    ("results/sweeps/airline/sweeps.journal", "airline", "results/forecasting",
     "forecasting-airline"),
]
NUMBERS = ("table.csv", "pairwise.csv", "budget_curves.csv")


@pytest.mark.parametrize(("journal", "study", "output", "folder"), PUBLISHED)
def test_a_published_report_is_what_its_command_rebuilds(journal, study, output, folder,
                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    committed = ROOT / output / folder
    table = (committed / "table.md").read_text()
    assert f"seqbench report --storage {journal} --study {study}" in table
    (rebuilt,) = write_reports(journal, tmp_path / output, study=study)
    for name in NUMBERS:
        assert (rebuilt / name).read_text() == (committed / name).read_text(), name
    assert (rebuilt / "table.md").read_text().replace(str(tmp_path / output), output) == table
    for cells in collect(journal, study).values():  # the curves come from committed records
        assert all(len(cell.validation_curves()) == 5 for cell in cells)
