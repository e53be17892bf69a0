# file: src/seqbench_sums/data.py
import numpy as np
import torch
from torch import nn

from seqbench import Batch, IndexedData

SEEDS = {"train": 1, "valid": 2, "test": 3}


def generate(length, sizes):
    return {split: np.random.default_rng([SEEDS[split], length]).random(
        (count, length, 1), dtype=np.float32) for split, count in sizes.items()}


class LastStep(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)

    def forward(self, features):
        return self.linear(features[:, -1]).squeeze(-1)


class SumsData(IndexedData):  # batches and their count from items() and collate()
    input_size = 1

    def __init__(self, splits):
        self.splits = {split: torch.from_numpy(x) for split, x in splits.items()}

    def items(self, split):
        return len(self.splits[split])

    def collate(self, split, rows):
        x = self.splits[split][rows]
        return Batch(inputs=x, targets=x[..., 0].sum(1))

    def encoder(self, params):
        return nn.Identity()

    def head(self, hidden_size, params):
        return LastStep(hidden_size)

    def loss(self, outputs, batch):
        return nn.functional.mse_loss(outputs, batch.targets)

    def statistics(self, outputs, batch):
        return {"sse": (outputs - batch.targets).pow(2).sum(),
                "count": torch.tensor(float(len(outputs)))}

    def metrics(self, totals):
        return {"mse": totals["sse"] / totals["count"]}
