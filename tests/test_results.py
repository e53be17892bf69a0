"""results/ rebuilds from committed files alone: every published table equals the report that
its printed command writes today from the committed journal and final-run records."""

from __future__ import annotations

from pathlib import Path

from seqbench.reports import write_reports
from seqbench.reports.collect import collect

ROOT = Path(__file__).resolve().parents[1]
JOURNAL, STUDIES, OUTPUT = "results/studies.journal", "jv,jsb,airline,m1", "results"
FOLDERS = ("speech-japanese-vowels", "music-jsb", "forecasting-airline", "forecasting-m1-yearly")
NUMBERS = ("table.csv", "pairwise.csv", "budget_curves.csv")


def test_every_published_report_is_what_its_printed_command_rebuilds(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    command = f"seqbench report --storage {JOURNAL} --study {STUDIES} --output-dir {OUTPUT}"
    assert command in (ROOT / OUTPUT / "index.html").read_text()
    rebuilt = {folder.name: folder for folder in write_reports(JOURNAL, tmp_path, study=STUDIES)}
    assert sorted(rebuilt) == sorted(FOLDERS)
    for name in FOLDERS:
        committed = ROOT / OUTPUT / name
        for numbers in NUMBERS:
            assert (rebuilt[name] / numbers).read_text() == (committed / numbers).read_text()
        assert (rebuilt[name] / "table.md").read_text().replace(str(tmp_path), OUTPUT) == \
            (committed / "table.md").read_text()
    assert (tmp_path / "ranking.csv").read_text() == (ROOT / OUTPUT / "ranking.csv").read_text()
    for cells in collect(JOURNAL, STUDIES).values():  # curves come from committed records
        assert all(len(cell.validation_curves()) == 5 for cell in cells)
