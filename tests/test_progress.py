"""What a run prints is what happened: per-epoch lines when the output is not a terminal,
early stopping said in words (not a bar frozen at 640/4000 with an ETA), a summary that reads
as a table against the baselines, and `seqbench data` naming the cache it just wrote."""

from __future__ import annotations

from types import SimpleNamespace

from seqbench import summary
from seqbench.cli import main
from seqbench.config import build_spec
from seqbench.console import EpochLines, TrainingProgress
from seqbench.datacheck import check
from seqbench.datafiles import cached


def test_a_run_off_a_terminal_prints_one_line_per_epoch_and_a_readable_summary(
        tmp_path, capsys):
    code = main(["run", "--task", "speech", "--cell", "gru", "--epochs", "2", "--hidden-size",
                 "8", "--output-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("train_loss" in line and "val_nll" in line for line in lines)
    assert "(best so far)" in lines[0]
    # the summary: metrics against the baseline, cost in words, no raw record
    assert "majority_class" in out and "test accuracy" in out and "higher is" in out
    assert "2 of 2" in out and "{'file'" not in out and "compile" not in out
    assert "Wrote: " in out and "test_items.csv" in out


def test_early_stopping_is_said_and_the_summary_gives_the_reason(capsys):
    import torch
    from lightning.pytorch.trainer.states import TrainerFn

    from seqbench.best import EarlyStoppingAfterMinimum

    best = EarlyStoppingAfterMinimum("val_nll", "min", patience=2, min_epochs=1, min_steps=0)
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=0, global_step=10,
                              should_stop=False, max_epochs=50, callbacks=[best],
                              fast_dev_run=False, state=SimpleNamespace(fn=TrainerFn.FITTING),
                              strategy=SimpleNamespace(reduce_boolean_decision=lambda d, **_: d),
                              callback_metrics={})
    model = SimpleNamespace()
    for epoch, value in enumerate([1.0, 0.8, 0.9, 0.85]):
        trainer.current_epoch = epoch
        trainer.callback_metrics["val_nll"] = torch.tensor(value)
        best.on_validation_end(trainer, model)
    assert trainer.should_stop and best.stop_reason == (
        "no better val_nll for 2 epochs after epoch 2, whose weights are kept")
    trainer.current_epoch = 4
    TrainingProgress("val_nll").on_train_end(trainer, model)
    assert ("stopped early after epoch 4 of 50: no better val_nll for 2 epochs after epoch 2"
            in capsys.readouterr().err)
    spec = build_spec("speech", "gru", None, {"epochs": 50, "patience": 2})
    assert summary.stopped_because({"epochs": 4, "selection_metric": "val_nll",
                                    "best_epoch": 2}, spec) == (
        "4 of 50: stopped early, no better val_nll for 2 epochs after epoch 2")


def test_epoch_lines_mark_the_best_epoch_in_the_metrics_direction(capsys):
    listeners: list = []
    lines = EpochLines(3, "val_accuracy", -1.0, listeners)
    for epoch, value in enumerate([0.5, 0.4, 0.7], 1):
        for listener in listeners:
            listener({"epoch": epoch, "seconds": 0.5, "lr": 0.1, "train_loss": 1.0,
                      "val_accuracy": value})
    lines.close()
    printed = capsys.readouterr().err.splitlines()
    assert ["(best so far)" in line for line in printed] == [True, False, True]
    assert listeners == []


def test_data_names_the_cache_a_task_wrote_even_when_its_describe_does_not(tmp_path,
                                                                           monkeypatch):
    from seqbench import train

    real = train.prepare_dataset

    def prepare_with_a_cache(*args):
        cached(tmp_path / "rolls.pkl", lambda: [1, 2, 3])  # as a task's `prepare` would
        return real(*args)

    monkeypatch.setattr(train, "prepare_dataset", prepare_with_a_cache)
    checked = check("speech", None, {}, None)
    assert checked.facts["cache"] == str(tmp_path / "rolls.pkl")
