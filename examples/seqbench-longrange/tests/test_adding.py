"""The adding task passes seqbench's conformance kit; its data is what the paper describes."""

import json
import math

import numpy as np
import pytest

from seqbench.cli import main
from seqbench.testing import parametrize_task_checks
from seqbench_longrange import task
from seqbench_longrange.adding import make_sequences


@parametrize_task_checks("adding")
def test_the_task_conforms_to_the_seqbench_contract(check):
    check()


def test_one_marker_in_each_half_and_the_target_is_their_sum():
    inputs, targets = make_sequences(500, 30, seed=1)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert inputs.shape == (500, 30, 2) and targets.shape == (500,)
    assert (markers[:, :15].sum(1) == 1).all() and (markers[:, 15:].sum(1) == 1).all()
    np.testing.assert_allclose((values * markers).sum(1), targets, rtol=1e-6)
    assert values.min() >= 0 and values.max() < 1


def test_data_is_fixed_by_seed_and_splits_differ():
    first, again = make_sequences(5, 10, seed=1), make_sequences(5, 10, seed=1)
    other = make_sequences(5, 10, seed=2)
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])


def test_predicting_the_mean_scores_the_variance_of_two_uniforms():
    data = task.prepare("standard", None, {"length": 50, "train_size": 1, "eval_size": 20_000})
    baseline = data.baselines()["predict 1.0"]
    assert math.isclose(baseline["mse"], 2 / 12, rel_tol=0.03)


def test_seqbench_run_trains_on_the_task_and_records_the_baseline(tmp_path, capsys):
    code = main(["run", "--task", "adding", "--cell", "gru", "--epochs", "1", "--quiet",
                 "--hidden-size", "8", "--set", "task.length=20", "--set", "train_size=200",
                 "--set", "eval_size=100", "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (run_dir,) = tmp_path.iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["primary_metric"] == "test_mse" and math.isfinite(metrics["test_mse"])
    assert metrics["split_sizes"] == {"train": 200, "valid": 100, "test": 100}
    assert metrics["baselines"]["predict 1.0"]["test_mse"] == pytest.approx(2 / 12, abs=0.05)
