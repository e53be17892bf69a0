"""Several batches per loader item (`seqbench.loaders.BATCHES_PER_ITEM`).

An item holds up to 8 batches (in training, each one step under Lightning's manual
optimisation), so Lightning's per-item cost is paid once per 8 batches. These tests hold it
to what makes it safe: the same batches and steps in the same order, so exactly the numbers
of one batch per item, with clipping, dropout and a decaying learning rate all in play, and
the same per-item test scores.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import seqbench.loaders
from seqbench.config import build_spec
from seqbench.loaders import Items, SplitBatches
from seqbench.runs import read_json

SETTINGS = {"epochs": 4, "layers": 2, "dropout": 0.3, "hidden_size": 16, "clip": 0.5,
            "lr": 0.01, "lr_decay": 0.8, "lr_decay_start": 2}


def rows(run_dir: Path) -> list[dict[str, str]]:
    """The run's history without its wall-clock column."""
    with open(run_dir / "history.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def trained(tmp_path: Path, name: str) -> tuple[dict, list[dict[str, str]], list]:
    from seqbench.train import train

    run_dir = tmp_path / name
    result = train(build_spec("speech", "gru", settings=SETTINGS, device="cpu"),
                   run_dir=run_dir, show_progress=False)
    metrics = read_json(run_dir / "metrics.json")
    scores = [[part.tolist() for part in pair] for pair in result.model.test_items]
    return ({k: v for k, v in metrics.items() if "second" not in k}, rows(run_dir), scores)


def test_eight_batches_per_item_give_exactly_the_numbers_of_one(tmp_path, monkeypatch):
    eight = trained(tmp_path, "eight")
    monkeypatch.setattr(seqbench.loaders, "BATCHES_PER_ITEM", 1)
    one = trained(tmp_path, "one")
    assert eight == one
    assert sum(len(values) for values, _ in eight[2]) == 370  # every test sequence, once
    # The lr column is the rate each epoch trained with: decay ** max(0, k - start).
    assert [float(row["lr"]) for row in eight[1]] == pytest.approx(
        [0.01 * 0.8 ** max(0, k - 2) for k in range(1, 5)])


def test_the_manual_steps_give_exactly_the_numbers_of_automatic_optimisation(tmp_path,
                                                                             monkeypatch):
    """The training loop before eight batches per item: Lightning's automatic optimisation of
    one batch per item, Lightning stepping the schedule (after each epoch's last batch, so
    its history row showed the next epoch's lr) and clipping in the same hook."""
    import seqbench.model

    class Automatic(seqbench.model.SequenceModel):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.automatic_optimization = True

        def lr_schedulers(self):
            return None  # Lightning steps it

        def training_step(self, item, index):
            ((batch, _),) = item
            return self.training_loss(batch)

    manual = trained(tmp_path, "manual")
    monkeypatch.setattr(seqbench.loaders, "BATCHES_PER_ITEM", 1)
    monkeypatch.setattr(seqbench.model, "SequenceModel", Automatic)
    automatic = trained(tmp_path, "automatic")
    assert manual[0] == automatic[0] and manual[2] == automatic[2]
    assert ([{k: v for k, v in row.items() if k != "lr"} for row in manual[1]]
            == [{k: v for k, v in row.items() if k != "lr"} for row in automatic[1]])
    assert [row["lr"] for row in manual[1][1:]] == [row["lr"] for row in automatic[1][:-1]]


def test_items_are_the_shares_batches_in_order_in_lists_of_up_to_eight():
    from seqbench.train import prepare_data

    data = prepare_data(build_spec("speech", "gru"), None)
    batches = SplitBatches(data, "train", 16, seed=3)
    batches.set_epoch(2)
    grouped = Items(batches, 8)
    grouped.set_epoch(2)  # reaches the split underneath, as `EpochOrder` does
    items = list(grouped)
    whole, rest = divmod(len(batches), 8)
    assert [len(item) for item in items] == [8] * whole + [rest] * (rest > 0)
    assert len(grouped) == len(items) == 2  # 15 training batches of 16 sequences
    flat = [batch for item in items for batch, counted in item if counted]
    alone = [batch for batch, _ in batches]
    assert all((a.inputs == b.inputs).all() and (a.targets == b.targets).all()
               for a, b in zip(flat, alone, strict=True))

