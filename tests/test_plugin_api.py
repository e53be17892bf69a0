"""The versioned plugin contract: old plugins keep working with a warning that says what to
change, incompatible ones are refused in one line, and the docs list every version.

`tests/old_contract/` holds a cell and a task written against plugin API 1.0, verbatim: the
example plugin of docs/plugins.md as it stood before `TaskData.modules()` replaced
`encoder()` and `head()` (commit 8cad6cd). They are installed here as a third-party
distribution would be, so a contract change that breaks them fails this file.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path

import pytest

from seqbench import PLUGIN_API, IndexedData, PluginContractError, registry
from seqbench.cli import main
from seqbench.plugin_api import VERSIONS, incompatibility
from seqbench.testing import check_cell, check_task

OLD = Path(__file__).parent / "old_contract"
DOCS = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()


def _forget_packages(names: set[str]) -> None:
    for module in [m for m in sys.modules if m.partition(".")[0] in names]:
        del sys.modules[module]


@pytest.fixture
def old_plugins(install_plugins):
    # tests/test_docs.py installs today's version of the same packages: import these afresh.
    packages = {path.name for path in OLD.iterdir() if path.is_dir()}
    _forget_packages(packages)
    install_plugins("seqbench-docs-example", {
        "seqbench.cells": {"indrnn-old": "seqbench_indrnn.plugin:cell"},
        "seqbench.tasks": {"sums": "seqbench_sums.plugin:task"}},
        {str(path.relative_to(OLD)): path.read_text() for path in OLD.rglob("*.py")})
    yield
    _forget_packages(packages)


def test_an_old_contract_task_and_cell_install_pass_the_kit_and_run(old_plugins, tmp_path,
                                                                    capsys):
    assert registry.discover("task")["sums"].error is None
    assert registry.discover("cell")["indrnn-old"].error is None
    with pytest.warns(DeprecationWarning, match=r"SumsData implements encoder\(params\) and "
                      r"head\(hidden_size, params\), the TaskData contract of seqbench plugin "
                      r"API 1\.0; since 1\.1 implement modules\(hidden_size, params\) returning "
                      r"\(encoder, head\) instead"):
        check_task("sums", learn=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the cell contract is unchanged
        check_cell("indrnn-old")
    with pytest.warns(DeprecationWarning, match="SumsData implements encoder"):
        code = main(["run", "--task", "sums", "--cell", "indrnn-old", "--epochs", "1",
                     "--hidden-size", "8", "--quiet", "--output-dir", str(tmp_path / "runs")])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["test_mse"] > 0


FUTURE = """
    import numpy as np
    from seqbench import Batch, Cell, Task, TaskData

    future = Cell("future", "written for plugin API 2.0", lambda *a, **k: None, plugin_api="2.0")
    typo = Cell("typo", "a version that is no version", lambda *a, **k: None, plugin_api="1")

    class Newer(Task):
        name, summary = "newer", "written for a minor version this seqbench does not have"
        datasets, default_dataset = {"x": "x"}, "x"
        primary_metric, direction = "mse", "minimize"
        plugin_api = "1.99"

        def prepare(self, dataset, context, params):
            raise AssertionError("never reached")

    class NoPrepare(Task):
        name, summary = "noprepare", "forgets prepare()"
        datasets, default_dataset = {"x": "x"}, "x"
        primary_metric, direction = "mse", "minimize"

    class HalfData(TaskData):  # batches, but no loss, statistics or metrics
        input_size = 1

        def batches(self, split, batch_size, seed=None):
            return iter(())

        def num_batches(self, split, batch_size):
            return 0

    class Half(Task):
        name, summary = "half", "its data lacks loss(), statistics() and metrics()"
        datasets, default_dataset = {"x": "x"}, "x"
        primary_metric, direction = "mse", "minimize"

        def prepare(self, dataset, context, params):
            return HalfData()
"""


@pytest.fixture
def incompatible(install_plugins):
    install_plugins("future-plugins", {
        "seqbench.cells": {"future": "future:future", "typo": "future:typo"},
        "seqbench.tasks": {"newer": "future:Newer", "noprepare": "future:NoPrepare",
                           "half": "future:Half"}}, {"future.py": FUTURE})


def test_seqbench_list_names_each_incompatible_plugin_and_why(incompatible, capsys):
    assert main(["list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (f"cell plugin 'future' (future:future) from future-plugins 1.0: incompatible with "
            f"this seqbench: it targets plugin API 2.0, newer than the {PLUGIN_API} this "
            "seqbench provides; upgrade seqbench") in out
    assert "plugin 'typo' (future:typo) from future-plugins 1.0: incompatible with this " \
           "seqbench: plugin_api must be 'MAJOR.MINOR'" in out
    assert "it targets plugin API 1.99, newer than the" in out
    assert ("task plugin 'noprepare' (future:NoPrepare) from future-plugins 1.0: incompatible "
            f"with this seqbench: NoPrepare lacks prepare(), which a Task must implement "
            f"(plugin API {PLUGIN_API})") in out


@pytest.mark.parametrize(("args", "message"), [
    (["--cell", "future", "--task", "forecasting"],
     "cell plugin 'future' from future-plugins 1.0 failed to load: incompatible with this "
     "seqbench: it targets plugin API 2.0"),
    (["--cell", "gru", "--task", "noprepare"],
     "task plugin 'noprepare' from future-plugins 1.0 failed to load: incompatible with this "
     "seqbench: NoPrepare lacks prepare()"),
    (["--cell", "gru", "--task", "half"],
     "future.HalfData cannot be used: it lacks loss(), metrics(), statistics(), which the "
     "TaskData contract requires (seqbench plugin API"),
], ids=["newer major", "missing prepare", "data missing methods"])
def test_selecting_an_incompatible_plugin_is_one_error_line_and_exit_2(incompatible, capsys,
                                                                       tmp_path, args, message):
    assert main(["run", *args, "--epochs", "1", "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_a_version_is_compatible_within_its_major_up_to_this_minor():
    major, minor = map(int, PLUGIN_API.split("."))
    assert incompatibility(None) is None and incompatibility("1.0") is None
    assert incompatibility(PLUGIN_API) is None
    assert "newer than" in incompatibility(f"{major}.{minor + 1}")
    assert "newer than" in incompatibility(f"{major + 1}.0")
    assert f"removed in {major}.0" in incompatibility(f"{major - 1}.9")


def test_the_docs_describe_every_version_of_the_contract():
    section = DOCS.partition("## Changes for plugin authors")[2]
    assert VERSIONS[-1] == PLUGIN_API
    assert re.findall(r"^### (\d+\.\d+)", section, re.M) == list(reversed(VERSIONS))


class Overwritten(IndexedData):
    input_size = 1

    def __init__(self):
        self.lengths = {"train": [3, 4]}

    def items(self, split):
        return 2

    def collate(self, split, rows):
        raise AssertionError("never reached")

    def loss(self, outputs, batch):
        raise AssertionError

    def statistics(self, outputs, batch):
        raise AssertionError

    def metrics(self, totals):
        raise AssertionError


def test_overwriting_indexed_data_lengths_names_the_mistake():
    with pytest.raises(PluginContractError, match=r"^Overwritten sets self\.lengths to a dict, "
                       r"which hides IndexedData's method lengths\(split\); keep the value "
                       r"under another name \(e\.g\. self\._lengths\)"):
        Overwritten()


def test_sweep_help_names_the_logger_extras_with_their_brackets(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "pip install 'seqbench[tensorboard]' / 'seqbench[mlflow]'" in out
