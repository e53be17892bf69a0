"""`seqbench new cell|task NAME` writes a distribution that passes the kit and trains as is.

The distribution is installed the way pip records it (a dist-info with the entry points
of the generated pyproject.toml, the src folder on sys.path), so this is what an author
gets from `pip install -e`; .ci/examples.sh does the real `pip install -e` and runs the
generated tests too.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from seqbench import registry
from seqbench.cli import main
from seqbench.testing import check_cell, check_task


@pytest.fixture
def install_scaffold(tmp_path, monkeypatch):
    def install(folder):
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        info = tmp_path / f"{project['name'].replace('-', '_')}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
        (info / "entry_points.txt").write_text("".join(
            f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items())
            for group, items in project["entry-points"].items()))
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.syspath_prepend(str(folder / "src"))
        registry.discover.cache_clear()

    return install


def scaffolded(tmp_path, kind, name, capsys):
    folder = tmp_path / f"seqbench-{name}"
    assert main(["new", kind, name, "--dir", str(folder)]) == 0
    assert f"pip install -e {folder}" in capsys.readouterr().out
    return folder


def test_a_scaffolded_cell_passes_the_kit_and_trains(tmp_path, capsys, install_scaffold):
    folder = scaffolded(tmp_path, "cell", "scaffoldleaky", capsys)
    assert "from_step" in (folder / "src/seqbench_scaffoldleaky/plugin.py").read_text()
    assert "import torch" not in (folder / "src/seqbench_scaffoldleaky/plugin.py").read_text()
    install_scaffold(folder)
    entry = registry.discover("cell")["scaffoldleaky"]
    assert entry.error is None and entry.distribution == "seqbench-scaffoldleaky"
    outcomes = {r.check: r.outcome for r in check_cell("scaffoldleaky", learn=True)}
    assert outcomes["check_learns"] == outcomes["check_device_follows_input"] == "passed"
    out = tmp_path / "runs"
    assert main(["run", "--cell", "scaffoldleaky", "--task", "forecasting", "--epochs", "1",
                 "--hidden-size", "8", "--quiet", "--output-dir", str(out)]) == 0
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "config.json").read_text())["spec"]["cell_params"] == {
        "leak": 0.5}


def test_a_scaffolded_task_passes_the_kit_on_its_real_data_and_trains(tmp_path, capsys,
                                                                       install_scaffold):
    folder = scaffolded(tmp_path, "task", "scaffoldsums", capsys)
    install_scaffold(folder)
    outcomes = {r.check: r.outcome for r in check_task("scaffoldsums", learn=True)}
    assert outcomes["check_default_dataset"] == outcomes["check_metrics_case"] == "passed"
    out = tmp_path / "runs"
    assert main(["run", "--task", "scaffoldsums", "--cell", "gru", "--epochs", "1", "--hidden-size",
                 "8", "--quiet", "--output-dir", str(out)]) == 0
    (run_dir,) = out.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 512, "valid": 128, "test": 128}
    assert "predict the mean" in metrics["baselines"]


def test_scaffolding_refuses_a_bad_or_installed_name_and_a_folder_in_use(tmp_path, capsys):
    assert main(["new", "cell", "My-Cell", "--dir", str(tmp_path / "x")]) == 2
    assert "plugin name 'My-Cell' must be lowercase" in capsys.readouterr().err
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    assert main(["new", "task", "mine", "--dir", str(tmp_path / "used")]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "used" / "keep.txt").read_text() == "mine"
    for kind, taken in (("cell", "lstm"), ("task", "music")):  # it would break the built-in
        assert main(["new", kind, taken, "--dir", str(tmp_path / taken)]) == 2
        assert f"a {kind} plugin named '{taken}' is already installed" in capsys.readouterr().err
        assert not (tmp_path / taken).exists()
