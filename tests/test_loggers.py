"""`--logger csv|tensorboard|mlflow`: each tracker's own files, read back with its own
reader, hold exactly the run record's per-epoch rows, hyperparameters and test metrics."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from seqbench.cli import main

EPOCHS = 3


def run(capsys, out: Path, *args: str) -> Path:
    code = main(["run", "--task", "toymusic", "--cell", "gru", "--epochs", str(EPOCHS),
                 "--quiet", "--output-dir", str(out), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def history(run_dir: Path) -> list[dict[str, float]]:
    """history.csv's numeric columns per epoch: what every tracker must agree with."""
    with open(run_dir / "history.csv", newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(handle)]


def record(run_dir: Path) -> tuple[list[dict[str, float]], dict[str, float], dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    tests = {k: v for k, v in metrics.items() if k.startswith("test_") and
             isinstance(v, float)}
    spec = json.loads((run_dir / "config.json").read_text())["spec"]
    assert len(history(run_dir)) == EPOCHS and tests
    return history(run_dir), tests, spec


def assert_series_match(read: dict[str, list[tuple[int, float]]], rows, tests, rel):
    """`read[name]` = [(step, value)]: one point per epoch (never per step), then the tests."""
    for name in rows[0]:
        if name == "epoch":
            continue
        assert read[name] == [(int(r["epoch"]), pytest.approx(r[name], rel=rel)) for r in rows]
    for name, value in tests.items():
        assert read[name] == [(EPOCHS, pytest.approx(value, rel=rel))]


def test_csv_logger_matches_history(toy_task, tmp_path, capsys):
    run_dir = run(capsys, tmp_path / "runs", "--logger", "csv")
    rows, tests, spec = record(run_dir)
    with open(run_dir / "csv" / "metrics.csv", newline="") as handle:
        logged = list(csv.DictReader(handle))
    read: dict[str, list] = {}
    for row in logged:
        for name, value in row.items():
            if name != "step" and value != "":
                read.setdefault(name, []).append((int(row["step"]), float(value)))
    assert_series_match(read, rows, tests, rel=1e-12)
    hparams = (run_dir / "csv" / "hparams.yaml").read_text()
    assert f"task: {spec['task']}" in hparams and f"epochs: {EPOCHS}" in hparams


def test_tensorboard_logger_matches_history(toy_task, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="tensorboard not installed: pip install "
                        "'seqbench[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = run(capsys, tmp_path / "runs", "--logger", "tensorboard")
    rows, tests, _ = record(run_dir)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    read = {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}
    assert_series_match(read, rows, tests, rel=1e-6)  # TensorBoard stores float32
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_mlflow_logger_matches_history_in_the_default_file_store(toy_task, tmp_path, capsys,
                                                                 monkeypatch):
    pytest.importorskip("mlflow", reason="mlflow not installed: pip install 'seqbench[mlflow]'")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # restored after the test
    monkeypatch.chdir(tmp_path)
    run_dir = run(capsys, tmp_path / "runs", "--logger", "mlflow")
    rows, tests, spec = record(run_dir)
    client = MlflowClient((tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("seqbench/toymusic/tiny")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run_dir.name
    assert logged.data.tags["run_dir"] == str(run_dir.resolve())
    read = {name: [(m.step, m.value) for m in client.get_metric_history(logged.info.run_id, name)]
            for name in logged.data.metrics}
    assert_series_match(read, rows, tests, rel=1e-12)
    assert logged.data.params["hparams/epochs"] == str(EPOCHS)
    assert logged.data.params["cell"] == spec["cell"]


def test_a_sweep_logs_every_trial_and_final(toy_task, tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "--task", "toymusic", "--cells", "gru", "--trials", "2", "--seeds",
                 "1", "--epochs", "2", "--top", "1", "--rerun-seeds", "0",
                 "--output-dir", str(out), "--logger", "csv"])
    assert code == 0, capsys.readouterr().err
    histories = sorted(path.parent for path in out.rglob("history.csv"))
    assert len(histories) >= 3  # two trials and one final at least
    for run_dir in histories:
        assert (run_dir / "csv" / "metrics.csv").is_file(), run_dir


@pytest.mark.parametrize(("args", "message"), [
    (["--logger", "wandb"], "unknown logger 'wandb'"),
])
def test_an_unknown_logger_is_one_line_and_exit_code_2(toy_task, tmp_path, capsys, args,
                                                        message):
    for command in (["run", "--cell", "gru"], ["sweep", "--cells", "gru"]):
        code = main([*command, "--task", "toymusic", "--output-dir", str(tmp_path), *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_a_file_store_the_user_names_is_allowed_as_the_default_one_is(monkeypatch, tmp_path):
    """MLflow 3 refuses file stores unless told; the README's own example names one."""
    from seqbench.loggers import mlflow_uri

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in ((tmp_path / "store").as_uri(), str(tmp_path / "store")):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        assert mlflow_uri() == uri and os.environ.pop("MLFLOW_ALLOW_FILE_STORE") == "true"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")  # a server: untouched
    assert mlflow_uri() == "http://127.0.0.1:5000" and "MLFLOW_ALLOW_FILE_STORE" not in os.environ
