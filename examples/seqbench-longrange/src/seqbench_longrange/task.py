"""The adding task plugin: in-memory data, a last-step regression head, MSE and accuracy.

Metrics are exact over a split: the statistics are the sum of squared errors, the number
of sequences and the number "solved" (absolute error below 0.04, Hochreiter & Schmidhuber's
criterion), summed by the core over batches and divided only at the end.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import Batch, CheckCase, DataContext, IndexedData, Param, Task
from seqbench_longrange.adding import SPLIT_SEEDS, from_marked, make_sequences

#: An answer within this of the target counts as solved (Hochreiter & Schmidhuber 1997).
TOLERANCE = 0.04


class AddingData(IndexedData):
    """Sequences and targets per split, as `(inputs[N, T, 2], targets[N])` arrays."""

    input_size = 2

    def __init__(self, splits: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> None:
        import torch

        self.splits = {name: (torch.from_numpy(x), torch.from_numpy(y))
                       for name, (x, y) in splits.items()}

    def split_sizes(self) -> dict[str, int]:
        return {name: len(y) for name, (_, y) in self.splits.items()}

    def items(self, split: str) -> int:
        return len(self.splits[split][1])

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        inputs, targets = self.splits[split]
        return Batch(inputs=inputs[rows], targets=targets[rows])

    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        from torch import nn

        return nn.Identity(), self.head(hidden_size, params)

    def head(self, hidden_size: int, params: Mapping[str, Any]):
        from seqbench_longrange.head import LastStep

        return LastStep(hidden_size)

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        return F.mse_loss(outputs, batch.targets)

    def statistics(self, outputs, batch: Batch):
        import torch

        error = outputs - batch.targets
        return {"sse": error.pow(2).sum(), "count": torch.tensor(float(len(error))),
                "solved": (error.abs() < TOLERANCE).sum()}

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        return {"mse": totals["sse"] / totals["count"],
                "accuracy": totals["solved"] / totals["count"]}

    def baselines(self) -> dict[str, dict[str, float]]:
        """Always answering 1.0, the mean target: about 2/12 = 0.167 MSE."""
        targets = self.splits["test"][1].double()
        error = 1.0 - targets
        return {"predict 1.0": {"mse": float(error.pow(2).mean()),
                                "accuracy": float((error.abs() < TOLERANCE).double().mean())}}

    def predict(self, model) -> np.ndarray:
        import torch

        device = next(model.parameters()).device
        with torch.no_grad():
            return torch.cat([model(batch.inputs.to(device))[0].cpu()
                              for batch in self.batches("test", 256)]).numpy()


class AddingTask(Task):
    name = "adding"
    summary = ("Adding problem (Hochreiter & Schmidhuber 1997): sum two marked values "
               "after T steps; MSE")
    datasets = {"standard": "values U[0,1], one marker in each half (Le et al. 2015), "
                "generated with fixed seeds"}
    default_dataset = "standard"
    primary_metric = "mse"
    direction = "minimize"
    params = (
        Param("length", int, 200, "sequence length T (the distance to remember)", low=2,
              high=100_000, tune=False),
        Param("train_size", int, 10_000, "training sequences", low=1, high=10_000_000,
              tune=False),
        Param("eval_size", int, 1_000, "validation and test sequences (each)", low=1,
              high=10_000_000, tune=False),
    )
    #: Gated cells sit on the 0.167 plateau for thousands of updates before the loss drops
    #: (earlier at a high learning rate), so early stopping is off and batches are small.
    defaults = {"epochs": 10, "hidden_size": 64, "batch_size": 20, "lr": 1e-2, "patience": 0}

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> AddingData:
        sizes = {"train": params["train_size"], "valid": params["eval_size"],
                 "test": params["eval_size"]}
        return AddingData({split: make_sequences(sizes[split], params["length"], seed)
                           for split, seed in SPLIT_SEEDS.items()})

    def generate(self, model, data: AddingData, out_dir: Path, options: Mapping[str, Any]):
        """The test sequences' targets and the model's answers, as CSV."""
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "predictions.csv"
        targets = data.splits["test"][1].numpy()
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["index", "target", "prediction", "abs_error"])
            for index, (target, answer) in enumerate(zip(targets, data.predict(model))):
                writer.writerow([index, f"{target:.6f}", f"{answer:.6f}",
                                 f"{abs(answer - target):.6f}"])
        return [path]

    def check_case(self) -> CheckCase:
        """Three hand-made test sequences (targets 0.5, 1.75, 1.02) and the answer 1.0.

        Squared errors 0.25, 0.5625 and 0.0004 give MSE 0.8129 / 3; only the third is within
        0.04, so accuracy is 1/3. With batches of 2 the last batch holds one sequence, so
        averaging per-batch MSEs (0.203) instead of summing would be caught.
        """
        import torch

        test = [from_marked([0.1, 0.7, 0.2, 0.4, 0.9, 0.3], (0, 3)),
                from_marked([0.8, 0.25, 0.6, 0.95, 0.5, 0.15], (0, 3)),
                from_marked([0.3, 0.52, 0.1, 0.7, 0.5, 0.2], (1, 4))]
        splits = {"train": make_sequences(6, 6, seed=1), "valid": make_sequences(3, 6, seed=2),
                  "test": (np.stack([x for x, _ in test]),
                           np.array([y for _, y in test], dtype=np.float32))}
        return CheckCase(
            data=AddingData(splits),
            predict=lambda batch: torch.ones(len(batch.targets)),
            expected={"mse": (0.25 + 0.5625 + 0.02**2) / 3, "accuracy": 1 / 3},
            batch_size=2,
        )
