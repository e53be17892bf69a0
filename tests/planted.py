"""Correct cells and tasks, each with switchable planted bugs, for testing the kit.

Each bug is one small, realistic mistake a plugin author makes (the kind found by trying
the kit as a third-party author would); `tests/test_planted_bugs.py` asserts that the
conformance check named for it catches it. The correct versions pass every check, so a
failure can only come from the planted bug. Cells are built from module-level functions
(`functools.partial`), so the kit can rebuild them in another process.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from seqbench import (
    Batch,
    Cell,
    CheckCase,
    IndexedData,
    Param,
    Task,
    TaskData,
    batch_rows,
    cached,
    content_key,
)
from seqbench.step import from_step

# ---- the cells: an Elman step, and an exponentially gated one, made into sequence modules


class ElmanStep(nn.Module):
    """h_t = tanh(W [x_t, h_{t-1}] + b) * scale, with one planted bug chosen by `bug`."""

    def __init__(self, input_size, hidden_size, scale=1.0, bug=None):
        super().__init__()
        self.hidden_size, self.scale, self.bug = hidden_size, scale, bug
        # A projection to two gates' width, of which the equations use one.
        width = 2 * hidden_size if bug == "unused projection" else hidden_size
        self.linear = nn.Linear(input_size + hidden_size, width)
        if bug == "init seeded from hash(str)":  # "reproducible" per layer, but per process
            generator = torch.Generator().manual_seed(hash(f"elman-{input_size}") % 2**31)
            with torch.no_grad():
                self.linear.weight.uniform_(-0.3, 0.3, generator=generator)
        if bug == "weights outside the state_dict":
            self.gain = torch.from_numpy(np.random.default_rng().random(hidden_size)).float()
        if bug == "learnable plain tensor":
            self.gain = torch.ones(hidden_size, requires_grad=True)
        if bug == "unused parameter":
            self.unused = nn.Parameter(torch.zeros(hidden_size))
        if bug == "buffer updated in place":  # a running output normaliser
            self.register_buffer("norm", torch.ones(()))

    def initial_state(self, batch_size, device, dtype):
        if self.bug == "initial_state ignores device":
            return torch.zeros(batch_size, self.hidden_size, dtype=dtype)
        if self.bug == "initial_state ignores dtype":
            return torch.zeros(batch_size, self.hidden_size, device=device)
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, h):
        if self.bug == "no recurrence":
            h = torch.zeros_like(h)
        if self.bug == "state detached at every step":
            h = h.detach()
        pre = self.linear(torch.cat([x_t, h], -1))[..., :self.hidden_size]
        h_new = torch.tanh(pre) * self.scale
        if self.bug == "mixes the batch":
            h_new = h_new - 0.1 * h_new.mean(0, keepdim=True)
        if self.bug in ("weights outside the state_dict", "learnable plain tensor"):
            h_new = h_new * self.gain
        if self.bug == "buffer updated in place":
            h_new = h_new * self.norm
            if self.training:
                self.norm.mul_(0.9).add_(0.1 * h_new.detach().abs().mean())
        return h_new, h_new


class ExpGatedStep(nn.Module):
    """An exponentially gated step after xLSTM's sLSTM (Beck et al. 2024), one memory per
    unit, with the stabiliser m that keeps the exponentials finite:
    m_t = max(f~ + m_{t-1}, i~), i = exp(i~ - m_t), f = exp(f~ + m_{t-1} - m_t),
    c_t = f c + i tanh(z), n_t = f n + i, h_t = sigmoid(o) c_t / n_t * scale."""

    def __init__(self, input_size, hidden_size, scale=1.0, bug=None):
        super().__init__()
        self.hidden_size, self.scale, self.bug = hidden_size, scale, bug
        self.gates = nn.Linear(input_size + hidden_size, 4 * hidden_size)

    def initial_state(self, batch_size, device, dtype):
        return tuple(torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
                     for _ in range(4))

    def forward(self, x_t, state):
        h, c, n, m = state
        i_, f_, z, o = self.gates(torch.cat([x_t, h], -1)).chunk(4, -1)
        if self.bug == "missing stabiliser":
            m_new, i, f = m, torch.exp(i_), torch.exp(f_)
        else:
            m_new = torch.maximum(f_ + m, i_)
            i, f = torch.exp(i_ - m_new), torch.exp(f_ + m - m_new)
        c, n = f * c + i * torch.tanh(z), f * n + i
        h = torch.sigmoid(o) * c / (n + 1e-6) * self.scale
        return h, (h, c, n, m_new)


class Stacked(nn.Module):
    """Wraps a from_step module to plant the bugs that live outside one step."""

    def __init__(self, inner, bug, num_layers, dropout):
        super().__init__()
        self.inner, self.bug, self.num_layers, self.dropout = inner, bug, num_layers, dropout
        self.leaked = None

    def forward(self, x, state=None):
        if self.bug == "forgets state":
            state = None
        if self.bug == "state counts steps in a Python int" and state is not None:
            state, _ = state
        if self.bug == "input modified in place":
            x /= 2  # "scale the input": in place, on the caller's tensor
        if self.bug == "random output noise":
            x = x + 0.01 * torch.from_numpy(np.random.default_rng().standard_normal(
                x.shape)).float()
        if (self.bug == "state leaks across batches" and state is None and self.training
                and self.leaked is not None and self.leaked[0].shape[0] == x.shape[0]):
            state = self.leaked
        y, state = self.inner(x, state)
        if self.bug == "state leaks across batches" and self.training:
            self.leaked = tuple(layer.detach() for layer in state)  # out of place, detached
        if self.bug == "non-causal normalisation":
            y = y - y.mean(1, keepdim=True)
        if self.bug == "dropout active in eval mode":
            y = F.dropout(y, self.dropout, training=True)
        if self.bug == "wrong output width":
            y = y[..., ::2]
        if self.bug == "returns every layer" and self.num_layers > 1:
            y = torch.cat([y] * self.num_layers, dim=-1)
        if self.bug == "state is a dict":
            state = {"layers": state}
        if self.bug == "state counts steps in a Python int":
            state = (state, x.shape[1])
        return y, state


def make_step(input_size, hidden_size, scale=1.0, *, bug=None, exponential=False):
    if bug == "ignores a declared parameter":
        scale = 1.0
    return (ExpGatedStep if exponential else ElmanStep)(input_size, hidden_size, scale, bug)


def build_planted(input_size, hidden_size, num_layers, dropout, *, bug=None, exponential=False,
                  **extra):
    if bug == "module without batch_first":
        return nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
    steps = from_step(functools.partial(make_step, bug=bug,
                                        exponential=exponential or bug == "missing stabiliser"))
    inner = steps(input_size, hidden_size, 1 if bug == "num_layers ignored" else num_layers,
                  0.0 if bug == "dropout ignored" else dropout, **extra)
    return Stacked(inner, bug, num_layers, dropout)


SCALE = (Param("scale", float, 1.0, low=0.5, high=2.0),)


def planted_cell(bug=None, params=SCALE, exponential=False):
    """The Elman cell (or, `exponential`, the exponentially gated one) with `bug` planted
    (None: correct)."""
    return Cell(name="elman", summary="an Elman cell with planted bugs", params=params,
                build=functools.partial(build_planted, bug=bug, exponential=exponential))


# ---- a regression task: sum the values of a sequence, read at the last step ----

LENGTH = 6


def values(count, seed):
    return np.random.default_rng(seed).random((count, LENGTH, 1))


def with_features(x, features):
    """Each step's value, and with features='value+position' its position in [0, 1]."""
    x = torch.as_tensor(x, dtype=torch.float32)
    if features == "value+position":
        x = torch.cat([x, torch.linspace(0, 1, x.shape[1]).expand(x.shape[0], -1)[..., None]], -1)
    return x


class SumData(TaskData):
    """Sequences of values (and features); the target is the sum of the values."""

    def __init__(self, splits, bug=None):
        self.bug, self.splits = bug, splits
        hard_coded = bug == "hard-coded input_size"
        self.input_size = 1 if hard_coded else self.splits["train"].shape[-1]

    def num_batches(self, split, batch_size):
        if self.bug == "miscounts batches":
            return 1
        return -(-len(self.splits[split]) // batch_size)

    def batches(self, split, batch_size, seed=None):
        x = self.splits[split]
        order = torch.arange(len(x))
        if seed is not None:
            generator = (None if self.bug == "unseeded shuffle" else torch.Generator().manual_seed(
                0 if self.bug == "a shuffle that ignores the seed" else seed))
            order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            rows = x[order[start:start + batch_size]]
            targets = rows[..., 0].sum(1)
            if self.bug == "targets of another batch":
                targets = targets[:-1]
            mask = torch.ones(rows.shape[:2]) if self.bug == "float mask" else None
            yield Batch(inputs=rows, targets=targets, mask=mask)

    def modules(self, hidden_size, params):
        wide = self.bug == "encoder wider than input_size"
        encoder = nn.Linear(self.input_size, self.input_size + 1) if wide else nn.Identity()
        return encoder, LastStep(hidden_size, squash=self.bug == "sigmoid on a regression output")

    def loss(self, outputs, batch):
        error = (outputs - batch.targets).pow(2)
        return error if self.bug == "loss per example" else error.mean()

    def statistics(self, outputs, batch):
        count = 1.0 if self.bug == "averages batch averages" else float(len(outputs))
        return {"sse": (outputs - batch.targets).pow(2).sum(), "count": torch.tensor(count)}

    def metrics(self, totals):
        return {"mse": totals["sse"] / totals["count"]}

    def item_scores(self, outputs, batch):
        return (outputs - batch.targets).pow(2), torch.ones(len(outputs))

    def artifacts(self, model, run_dir):
        folder = run_dir.parent if self.bug == "writes outside the run folder" else run_dir
        path = folder / "predictions.txt"
        path.write_text("ok\n")
        return [path]


class LastStep(nn.Module):
    def __init__(self, hidden_size, squash=False):
        super().__init__()
        self.linear, self.squash = nn.Linear(hidden_size, 1), squash

    def forward(self, features):
        out = self.linear(features[:, -1]).squeeze(-1)
        return torch.sigmoid(out) if self.squash else out


class SumTask(Task):
    name = "sum"
    summary = "sum of a sequence's values, with planted bugs"
    datasets = {"generated": "uniform values, fixed seeds"}
    default_dataset = "generated"
    primary_metric = "mse"
    direction = "minimize"
    params = (Param("features", str, "value", "what each step carries",
                    choices=("value", "value+position"), tune=False),)
    defaults = {"epochs": 2, "hidden_size": 8, "batch_size": 8}

    def __init__(self, bug=None):
        self.bug = bug
        if bug == "typo in a core default":
            self.defaults = {**self.defaults, "epoch": 5}
        if bug == "primary metric not computed":
            self.primary_metric = "rmse"

    def prepare(self, dataset, context, params):
        features = params["features"]

        def build():
            splits = {"train": values(48, 1), "valid": values(12, 2), "test": values(12, 3)}
            if self.bug == "valid leaks into test":
                splits["test"] = np.concatenate([splits["test"][:7], splits["valid"][:5]])
            return {split: with_features(x, features) for split, x in splits.items()}

        # The prepared splits are cached by what they were built from.
        key = (content_key(dataset) if self.bug == "a task option the cache ignores"
               else content_key(dataset, features))
        return SumData(cached(context.cache_dir / f"sum-{key}.pkl", build), self.bug)

    def generate(self, model, data, out_dir, options):
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "sums.txt"
        if self.bug != "promises a file":
            path.write_text("ok\n")
        return [path]

    def check_case(self):
        """Test sums 0.5, 1.5, 2.0 against the answer 1.0: MSE (0.25 + 0.25 + 1) / 3 = 0.5;
        batches of 2 and 1, so averaging batch averages gives (0.25 + 1) / 2 instead."""
        rows = np.zeros((3, LENGTH, 1))
        rows[0, :2, 0], rows[1, :3, 0], rows[2, :4, 0] = 0.25, 0.5, 0.5
        splits = {"train": values(6, 4), "valid": values(3, 5), "test": rows}
        if self.bug == "valid leaks into test":
            rows[2] = splits["valid"][0]
        return CheckCase(data=SumData({k: with_features(x, "value") for k, x in splits.items()},
                                      bug=self.bug),
                         predict=lambda batch: torch.ones(len(batch.targets)),
                         expected={"mse": 0.5}, batch_size=2)


# ---- a classification task: which third of [0, 1] a sequence's last value falls in ----

CLASSES = 3


def labelled(count, seed):
    """`count` sequences of 2 to 8 uniform values and their classes (the last value's third)."""
    rng = np.random.default_rng(seed)
    sequences = [rng.random(int(n)).astype(np.float32) for n in rng.integers(2, 9, count)]
    return sequences, np.array([min(int(s[-1] * CLASSES), CLASSES - 1) for s in sequences])


def stratified(labels, share, rng):
    """Indices (train, valid): `share` of every class goes to valid."""
    valid = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[
        :round(share * np.sum(labels == c))] for c in range(CLASSES)])
    return np.setdiff1d(np.arange(len(labels)), valid), np.sort(valid)


class ClassData(IndexedData):
    """Padded sequences (`batch.mask`) classified from their last real step."""

    input_size = 1

    def __init__(self, pool, test, valid_seed=0, bug=None):
        sequences, labels = pool
        self.bug = bug
        if bug == "split sorted by label":  # "the last 25% of the pool", after sorting it
            order = np.argsort(labels, kind="stable")
            train, valid = order[:len(order) * 3 // 4], order[len(order) * 3 // 4:]
        else:
            seed = None if bug == "split drawn without a seed" else valid_seed
            train, valid = stratified(labels, 0.25, np.random.default_rng(seed))
        self.sequences = {"train": [sequences[i] for i in train],
                          "valid": [sequences[i] for i in valid], "test": test[0]}
        self.labels = {"train": labels[train], "valid": labels[valid], "test": test[1]}

    def items(self, split):
        return len(self.sequences[split])

    def lengths(self, split):
        return [len(s) for s in self.sequences[split]]

    def collate(self, split, rows):
        chosen = [torch.from_numpy(self.sequences[split][i]) for i in rows]
        lengths = torch.tensor([len(s) for s in chosen])
        inputs = nn.utils.rnn.pad_sequence(chosen, batch_first=True)[..., None]
        mask = torch.arange(inputs.shape[1])[None] < lengths[:, None]
        return Batch(inputs=inputs, targets=torch.as_tensor(self.labels[split][rows]), mask=mask)

    def batches(self, split, batch_size, seed=None):
        if self.bug == "numpy's global RNG reseeded in batches()" and seed is not None:
            np.random.seed(seed)
        if self.bug != "labels shifted by one item":
            yield from super().batches(split, batch_size, seed)
            return
        rows = batch_rows(self.items(split), batch_size, seed, self.lengths(split))
        shifted, start = np.roll(np.concatenate(rows), -1), 0
        for chunk in rows:  # each batch's labels gathered one item off its inputs
            batch = self.collate(split, chunk)
            batch.targets = torch.as_tensor(self.labels[split][shifted[start:start + len(chunk)]])
            start += len(chunk)
            yield batch

    def modules(self, hidden_size, params):
        return nn.Identity(), nn.Linear(hidden_size, CLASSES)  # logits at every step

    def logits(self, outputs, batch):
        """The logits of each sequence's last real step (the last step if `bug`)."""
        if self.bug == "reads the last padded step":
            return outputs[:, -1]
        return outputs[torch.arange(len(outputs)), batch.mask.sum(1) - 1]

    def loss(self, outputs, batch):
        if self.bug == "loss averaged over padding":  # every step predicts the class
            steps = outputs.shape[1]
            return F.cross_entropy(outputs.flatten(0, 1), batch.targets.repeat_interleave(steps))
        return F.cross_entropy(self.logits(outputs, batch), batch.targets)

    def statistics(self, outputs, batch):
        logits = self.logits(outputs, batch)
        return {"correct": (logits.argmax(-1) == batch.targets).sum(),
                "nll": F.cross_entropy(logits, batch.targets, reduction="sum"),
                "count": torch.tensor(float(len(logits)))}

    def metrics(self, totals):
        return {"accuracy": totals["correct"] / totals["count"],
                "nll": totals["nll"] / totals["count"]}

    def item_scores(self, outputs, batch):
        correct = (self.logits(outputs, batch).argmax(-1) == batch.targets).double()
        if self.bug == "item_scores per batch":
            return correct.sum().reshape(1), torch.ones(1) * len(correct)
        return correct, torch.ones_like(correct)


def declare_directions(task, bug) -> None:
    """Plant the two metric-direction bugs on a task (its primary metric, or its selection
    metric, declared the wrong way round); every planted task carries them alike."""
    if bug == "accuracy declared lower-is-better":
        task.direction = "minimize"
    if bug == "NLL declared higher-is-better":
        task.select_by = ("nll", "maximize")


class ClassTask(Task):
    name = "lastclass"
    summary = "the class of a sequence's last value, with planted bugs"
    datasets = {"generated": "uniform values, fixed seeds"}
    default_dataset = "generated"
    primary_metric = "accuracy"
    direction = "maximize"
    select_by = ("nll", "minimize")
    stratified = ("valid",)
    params = (Param("valid_seed", int, 0, "which sequences are held out", low=0, tune=False),)
    defaults = {"epochs": 2, "hidden_size": 8, "batch_size": 8}

    def __init__(self, bug=None):
        self.bug = bug
        declare_directions(self, bug)

    def prepare(self, dataset, context, params):
        if self.bug == "torch.manual_seed in prepare()":
            torch.manual_seed(0)  # "for reproducible data"
        return ClassData(labelled(96, 1), labelled(30, 3), params["valid_seed"], self.bug)

    def check_case(self):
        """Three test sequences of classes 0, 1, 2, answered with equal logits: argmax is
        class 0, so accuracy 1/3, and NLL log 3 per sequence (batches of 2 then 1)."""
        test = [np.array([0.5, 0.1], np.float32), np.array([0.2, 0.9, 0.5], np.float32),
                np.array([0.1, 0.2, 0.3, 0.9], np.float32)], np.array([0, 1, 2])
        return CheckCase(data=ClassData(labelled(16, 4), test, bug=self.bug),
                         predict=lambda batch: torch.zeros(*batch.inputs.shape[:2], CLASSES),
                         expected={"accuracy": 1 / 3, "nll": float(np.log(3))}, batch_size=2)
