"""The report's web pages: content, the ranking across datasets, and a real browser.

The storage is fake (three datasets, three cells, final runs with known test values), so
every rank and every number on the pages can be checked by hand. The browser tests open
each page in Debian's headless Chromium, as CI does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState, create_trial
from scipy import stats as scipy_stats

from seqbench.reports import bayes, ranking, write_reports
from seqbench.reports.collect import collect
from seqbench.sweeps.storage import open_storage

#: (task, dataset) -> (direction, {cell: final test values over three seeds}).
DATASETS = {
    ("alpha", "a"): ("minimize", {"lstm": [1.0, 1.1, 1.2], "gru": [2.0, 2.1, 2.2],
                                  "rnn": [3.0, 3.2, 3.1]}),
    ("beta", "b"): ("maximize", {"lstm": [0.90, 0.91, 0.92], "gru": [0.95, 0.96, 0.94],
                                 "rnn": [0.80, 0.81, 0.82]}),
    ("gamma", "g"): ("minimize", {"lstm": [5.0, 5.5, 5.2], "gru": [6.0, 6.1, 6.2],
                                  "rnn": [7.0, 7.1, 7.3]}),
}
#: Ranks by hand: alpha lstm<gru<rnn; beta gru>lstm>rnn; gamma lstm<gru<rnn.
RANKS = {"lstm": (1, 2, 1), "gru": (2, 1, 2), "rnn": (3, 3, 3)}


def fake_storage(tmp_path: Path, datasets=DATASETS) -> str:
    path = tmp_path / "studies.journal"
    storage = open_storage(str(path))
    for (task, dataset), (direction, finals) in datasets.items():
        for cell, values in finals.items():
            study = optuna.create_study(study_name=f"seqbench/{task}/{dataset}/{cell}",
                                        storage=storage, direction="minimize")
            for number, lr in enumerate((0.01, 0.001)):
                study.add_trial(create_trial(
                    state=TrialState.COMPLETE, value=1.0 + number, params={"lr": lr},
                    distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)},
                    user_attrs={"settings": {"lr": lr, "hidden_size": 64}}))
            attrs = {"task": task, "dataset": dataset, "cell": cell, "primary_metric": "score",
                     "direction": direction, "command": f"seqbench sweep --task {task}"}
            for seed, value in enumerate(values):
                run_dir = tmp_path / "finals" / task / cell / f"seed{seed}"
                run_dir.mkdir(parents=True)
                (run_dir / "history.csv").write_text("epoch,val_score\n1,0.5\n2,0.4\n")
                (run_dir / "config.json").write_text(json.dumps(
                    {"environment": {"torch": "9.9.9-test"}}))
                attrs[f"final_seed{seed}"] = {"run_dir": str(run_dir), "trial": 1, "metrics": {
                    "test_score": value, "parameters": 1234, "seconds_per_epoch": 0.5,
                    "baselines": {"majority": {"test_score": 0.5}}}}
            for key, value in attrs.items():
                study.set_user_attr(key, value)
    return str(path)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """The pages of the fake storage; Stan draws 250 instead of 1,000 samples per chain
    (these pages test what is written, not the posterior's third digit), which takes most
    of the fixture's time off."""
    tmp_path = tmp_path_factory.mktemp("html")
    out = tmp_path / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bayes, "SAMPLES", 250)
        write_reports(fake_storage(tmp_path), out)
    return out


def pages(root: Path) -> list[Path]:
    return [root / "index.html", *sorted(root.glob("*/index.html"))]


def test_ranks_average_ranks_and_friedman_match_hand_and_scipy(tmp_path):
    result = ranking.rank(collect(fake_storage(tmp_path)))
    for cell, expected in RANKS.items():
        assert [result.ranks[key][cell] for key in result.datasets] == list(expected)
        assert result.average_rank(cell) == pytest.approx(sum(expected) / 3)
    scipy_p = scipy_stats.friedmanchisquare(*[list(map(float, RANKS[c])) for c in
                                              result.complete]).pvalue
    assert ranking.friedman_p(result) == pytest.approx(scipy_p)
    assert result.diagram_problem() == ""


def test_ties_share_the_mean_rank_and_two_cells_draw_no_diagram(tmp_path):
    tied = {("alpha", "a"): ("minimize", {"lstm": [1.0], "gru": [1.0], "rnn": [2.0]}),
            ("beta", "b"): ("maximize", {"lstm": [0.9], "gru": [0.8]})}
    result = ranking.rank(collect(fake_storage(tmp_path, tied)))
    assert result.ranks[("alpha", "a")] == {"gru": 1.5, "lstm": 1.5, "rnn": 3.0}
    assert result.average_rank("lstm") == pytest.approx(1.25)
    # rnn's average rank is over the one dataset it ran on, and the page says so
    assert result.datasets_of("rnn") == 1 and result.complete == ["gru", "lstm"]
    assert "needs at least three" in result.diagram_problem()


def test_the_top_page_ranks_links_and_prints_its_command(report):
    page = (report / "index.html").read_text()
    assert "Friedman test over 3 datasets and 3 cells" in page
    assert 'href="alpha-a/index.html"' in page
    assert f"seqbench report --storage {report.parent / 'studies.journal'} --study seqbench " \
           f"--output-dir {report}" in page
    # average ranks: lstm 4/3, gru 5/3, rnn 3
    assert re.search(r"<b>1\.33</b>.*<b>1\.67</b>.*<b>3</b>|<b>1\.67</b>.*<b>1\.33</b>.*<b>3</b>",
                     page)
    rows = (report / "ranking.csv").read_text().splitlines()
    assert "all,average rank,rnn,,3.0" in rows
    assert (report / ranking.DIAGRAM).is_file()
    # every cell searched the same two values: a three-way tie at every budget
    assert "Does the winner depend on the tuning budget?" in page
    assert '<a href="alpha-a/budget_curves.png">alpha / a</a></td><td>gru = lstm = rnn</td>' \
        in page and "<td>gru = lstm = rnn (2)</td>" in page


def test_the_top_page_says_what_the_evidence_supports(report):
    page = (report / "index.html").read_text()
    assert "What the evidence across datasets supports" in page
    # k = 3 cells, N = 3 datasets: CD = 2.343 * sqrt(12 / 18) = 1.91; lstm 1.33, rnn 3.
    assert "With 3 datasets and 3 cells, Nemenyi's test (α = 0.05) detects only average-rank " \
           "gaps of at least 1.91; the largest here is 1.67 (lstm 1.33, rnn 3.00), so the " \
           "ranks cannot tell these cells apart." in page
    assert "Detecting a gap of 0.5 would take at least 44 datasets" in page
    # rnn is worse than gru by 10-50% of the metric on every dataset and seed, but three
    # datasets leave the spread between datasets wide: more probable, not decided.
    row = re.search(r"<td>gru − rnn</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([\d.]+)</td>"
                    r"<td>(\w+)</td>", page)
    first, within, second = map(float, row.groups()[:3])
    assert first + within + second == pytest.approx(1.0, abs=2e-3)
    assert first > 0.5 > second and row.group(4) == "undecided"
    assert "The Bayesian hierarchical comparison decides no pair" in page


def test_nemenyis_critical_difference_and_the_datasets_a_gap_needs():
    # Demšar (2006), table 5: q_0.05 = 2.343 for three classifiers; eight datasets give the
    # 1.17 the published index page rests on.
    assert ranking.nemenyi_q(3) == pytest.approx(2.343, abs=1e-3)
    assert ranking.critical_difference(3, 8) == pytest.approx(1.17, abs=5e-3)
    needed = ranking.datasets_to_detect(0.5, 3)
    assert ranking.critical_difference(3, needed) <= 0.5 < ranking.critical_difference(
        3, needed - 1)


def test_bayesian_differences_are_relative_signed_and_paired_in_seed_order(tmp_path):
    grouped = collect(fake_storage(tmp_path))
    datasets = sorted(grouped)
    differences = bayes.relative_differences(grouped, datasets, "lstm", "gru")
    # alpha (lower is better): lstm 1.0 vs gru 2.0 on seed 0, relative to the mean 1.6
    assert differences.shape == (3, 3)
    assert differences[0, 0] == pytest.approx((2.0 - 1.0) / 1.6)
    # beta (higher is better): gru 0.95 beats lstm 0.90: negative for lstm
    assert differences[1, 0] == pytest.approx((0.90 - 0.95) / np.mean([0.9, 0.91, 0.92,
                                                                       0.95, 0.96, 0.94]))


def test_the_budget_table_names_the_cell_that_leads_after_n_trials():
    class Searched:  # what budget_leaders reads of a CellSummary
        selection_direction = "minimize"

        def __init__(self, cell, values):
            self.cell, self.values = cell, values

        def trial_values(self):
            return self.values

    # gru's best of n is always 2; lstm's is 1 with chance n/6, else 5: 4.33, 1.67, 1.
    cells = [Searched("lstm", [5, 1, 5, 5, 5, 5]), Searched("gru", [2] * 6)]
    assert ranking.budget_leaders(cells) == {1: "gru", 5: "lstm", 6: "lstm"}


def test_a_folder_page_holds_table_tests_hyperparameters_environment_and_commands(report):
    page = (report / "alpha-a" / "index.html").read_text()
    assert "lstm ★" in page and "[0.8516, 1.348]" in page  # 1.1 ± 4.303 * 0.1 / sqrt(3)
    assert "majority (baseline)" in page
    assert "Holm-corrected" in page
    assert "hidden_size" in page and "0.001" in page  # the settings of trial 1
    assert "9.9.9-test" in page  # the final runs' recorded environment
    assert "seqbench sweep --task alpha" in page and "seqbench report --storage" in page
    assert 'href="../index.html"' in page


def test_pages_need_no_network(report):
    for path in pages(report):
        text = path.read_text()
        assert not re.search(r"""(src|href)=["'](https?:)?//""", text), path
        assert "<link" not in text


def test_a_filtered_report_writes_no_overview(tmp_path):
    out = tmp_path / "filtered"
    write_reports(fake_storage(tmp_path), out, task="beta")
    assert (out / "beta-b" / "index.html").is_file()
    assert not (out / "index.html").exists()
    assert "All comparisons" not in (out / "beta-b" / "index.html").read_text()


# --- in a real browser ----------------------------------------------------------------------

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (CI installs Debian's package: apt-get "
    "install chromium)")

#: Runs first on the page (inserted at the top of <head>): after load, records every image
#: that did not decode and every table without a body row on the <html> element, where
#: --dump-dom shows it; errors themselves reach Chromium's console log.
PROBE = """<script>window.addEventListener("load", function () {
  var broken = [].filter.call(document.images, function (i) {
    return !(i.complete && i.naturalWidth > 0); }).length;
  var empty = [].filter.call(document.querySelectorAll("table"), function (t) {
    return t.querySelectorAll("tbody tr td").length === 0; }).length;
  document.documentElement.setAttribute("data-probe", JSON.stringify(
    {images: document.images.length, broken: broken,
     tables: document.querySelectorAll("table").length, empty: empty}));
});</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args],
        capture_output=True, text=True, timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    """Every message the page wrote to the console (a thrown error is one too)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@needs_chromium
def test_pages_open_in_chromium_without_errors_broken_images_or_empty_tables(report):
    for path in pages(report):
        probe = path.with_name("probe.html")
        probe.write_text(path.read_text().replace("<head>", "<head>" + PROBE, 1))
        run = chromium("--dump-dom", probe.as_uri())
        probe.unlink()
        assert console_messages(run.stderr) == [], path
        found = re.search(r'data-probe="([^"]*)"', run.stdout)
        assert found, f"{path}: the page did not finish loading\n{run.stderr[-2000:]}"
        result = json.loads(found.group(1).replace("&quot;", '"'))
        assert result["images"] >= 1 and result["broken"] == 0, (path, result)
        assert result["tables"] >= 1 and result["empty"] == 0, (path, result)


@needs_chromium
def test_the_screenshot_is_not_blank(report, tmp_path):
    import matplotlib.image

    for path in pages(report):
        shot = tmp_path / f"{path.parent.name}.png"
        run = chromium(f"--screenshot={shot}", "--window-size=1280,1600", path.as_uri())
        assert shot.is_file(), run.stderr[-2000:]
        pixels = matplotlib.image.imread(shot)[..., :3]
        ink = np.any(pixels < 0.9, axis=-1).mean()  # share of pixels darker than near-white
        assert ink > 0.01 and pixels.std() > 0.05, (path, ink, pixels.std())


@needs_chromium
def test_the_probe_sees_a_console_error_and_a_broken_image(tmp_path):
    """The browser checks above would pass on anything if the probe could not see faults."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><head>" + PROBE + "</head><body><table></table>"
                    '<img src="data:image/png;base64,AAAA"><script>undefinedFunction();'
                    "</script></body></html>")
    run = chromium("--dump-dom", page.as_uri())
    assert any("undefinedFunction" in line for line in console_messages(run.stderr))
    result = json.loads(re.search(r'data-probe="([^"]*)"', run.stdout).group(1)
                        .replace("&quot;", '"'))
    assert result == {"images": 1, "broken": 1, "tables": 1, "empty": 1}


def verdict_of(page: Path) -> str:
    """The paragraph right under a page's title."""
    return re.search(r'</h1>\s*<p class="verdict">(.*?)</p>', page.read_text()).group(1)


def test_every_page_opens_with_a_verdict_in_words(report):
    # alpha: lower is better and the majority baseline (0.5) is under every cell's values
    assert verdict_of(report / "alpha-a" / "index.html").startswith(
        "The majority baseline beats every cell: test score 0.5 (lower is better) against 1.1 "
        "for the best cell, lstm, beyond every cell&#x27;s 95% interval, so try the baseline "
        "before a recurrent cell on this data. Among the cells, try lstm first: it beats gru "
        "and rnn")
    beta = verdict_of(report / "beta-b" / "index.html")
    assert beta.startswith("Try gru first: it beats lstm and rnn on test score (0.95) by "
                           "differences that survive the Holm-corrected test over final seeds")
    assert "a fresh gru run beats a fresh run of lstm with probability 1.00 [1, 1], of rnn" in beta
    assert "baseline" not in beta  # 0.5 is far below every cell where higher is better
    table = (report / "beta-b" / "table.md").read_text().splitlines()
    assert table[2].startswith("**Verdict.** Try gru first")
    overview = verdict_of(report / "index.html")
    assert overview.startswith("No cell is best in general: lstm has the best average rank "
                               "(1.33) over 3 datasets, but the Friedman test finds no "
                               "difference between the cells&#x27; ranks")
    assert overview.endswith("Per dataset, one cell beats every other significantly on 3 of 3: "
                             "alpha/a (lstm), beta/b (gru), gamma/g (lstm); a baseline beats "
                             "every cell on 2: alpha/a (majority), gamma/g (majority).")


def test_a_verdict_says_when_no_cell_clearly_wins(tmp_path):
    close = {("delta", "d"): ("maximize", {"lstm": [0.90, 0.95, 0.92],
                                           "gru": [0.91, 0.93, 0.94]})}
    (folder,) = write_reports(fake_storage(tmp_path, close), tmp_path / "report")
    text = verdict_of(folder / "index.html")
    assert text.startswith("No cell clearly wins: gru has the best mean test score (0.9267), so "
                           "try it first, but the Holm-corrected test over final seeds does not "
                           "separate gru from lstm (Holm p ≥ ")
    assert "a fresh gru run beats a fresh run of lstm with probability" in text
    same = {("delta", "d"): ("maximize", {"lstm": [0.90, 0.95], "gru": [0.90, 0.95]})}
    (tmp_path / "tie").mkdir()
    (folder,) = write_reports(fake_storage(tmp_path / "tie", same), tmp_path / "tie-report")
    assert verdict_of(folder / "index.html").startswith(
        "No cell clearly wins: gru and lstm share the best mean test score (0.925), so try "
        "either first, but the Holm-corrected test over final seeds does not separate gru "
        "from lstm (Holm p = 1)")


def test_the_budget_table_cannot_be_read_as_a_ranking(report):
    page = (report / "index.html").read_text()
    assert "Not a ranking of the test results above" in page
    assert "<th>best validation after 1 trial</th>" in page
