"""The bugs of issue #39's author trials, planted in seqbench's own plugins instead.

`tests/planted.py` re-creates each bug in small plugins written next to the checks; a kit
tuned on them could catch those and miss the same mistake elsewhere. Here the same bug
kinds are planted, written another way where a plugin author would, in hosts the checks
were not developed on: the fused `nn.GRU` cell (the built-in `gru`), seqbench's sLSTM step
(`seqbench_cells.modern.xlstm.SLSTMStep`, exponentially gated) and the speech task
(Japanese Vowels: variable-length sequences, padding, a stratified validation split).
`tests/test_heldout_bugs.py` asserts each is caught by the check named for it, and
`tests/count_planted.py` counts them.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from planted import declare_directions
from seqbench import Cell, cached, content_key
from seqbench_cells.modern.xlstm import SLSTMStep
from seqbench_tasks.speech.task import SpeechData, SpeechTask, stratified_split

# ---- cells: bugs around the fused GRU, and inside the sLSTM step ----


class PlantedGRU(nn.Module):
    """`nn.GRU` with one bug of the code around it (`bug` None: the built-in cell)."""

    def __init__(self, gru, bug, dropout):
        super().__init__()
        self.gru, self.bug, self.p = gru, bug, dropout
        self.carried = None

    def forward(self, x, state=None):
        if self.bug == "input modified in place":
            x -= x.mean(-1, keepdim=True)  # "centre each frame"
        if self.bug == "state leaks across batches" and state is None and self.training:
            if self.carried is not None and self.carried.shape[1] == x.shape[0]:
                state = self.carried  # "warm start from the last batch"
        y, state = self.gru(x, state)
        if self.bug == "state leaks across batches":
            self.carried = state.detach()
        if self.bug == "non-causal normalisation":  # "layer norm", over time instead of units
            y = y / (y.norm(dim=1, keepdim=True) + 1e-6)
        if self.bug == "dropout active in eval mode":
            y = F.dropout(y, self.p)  # F.dropout's training defaults to True
        return y, state


def build_gru(input_size, hidden_size, num_layers, dropout, *, bug=None):
    if bug == "module without batch_first":
        return nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
    layers = 1 if bug == "num_layers ignored" else num_layers
    gru = nn.GRU(input_size, hidden_size, num_layers=layers,
                 dropout=0.0 if bug == "dropout ignored" else dropout, batch_first=True)
    return PlantedGRU(gru, bug, dropout)


class PlantedSLSTMStep(SLSTMStep):
    """seqbench's sLSTM step with one bug inside it (`bug` None: the built-in step)."""

    def __init__(self, input_size, hidden_size, *, heads, bug=None):
        super().__init__(input_size, hidden_size, heads=heads)
        self.bug = bug
        if bug == "init seeded from hash(str)":  # "the same weights for each layer size"
            generator = torch.Generator().manual_seed(hash(("slstm", input_size)) % 2**31)
            with torch.no_grad():
                self.input.weight.normal_(0, 1 / math.sqrt(input_size), generator=generator)
        if bug == "learnable plain tensor":  # a per-unit output gain
            self.gain = torch.full((hidden_size,), 1.0, requires_grad=True)
        if bug == "unused projection":  # a residual path, never added
            self.skip = nn.Linear(input_size, hidden_size)
        if bug == "buffer updated in place":  # an output scale tracked in training
            self.register_buffer("scale", torch.ones(hidden_size))

    def forward(self, x_t, state):
        if self.bug == "state detached at every step":
            state = tuple(part.detach() for part in state)
        if self.bug == "missing stabiliser":
            return self.unstabilised(x_t, state)
        h, state = super().forward(x_t, state)
        if self.bug == "learnable plain tensor":
            h = h * self.gain
        if self.bug == "unused projection":
            self.skip(x_t)  # computed, then forgotten
        if self.bug == "buffer updated in place":
            h = h * self.scale
            if self.training:
                self.scale.mul_(0.99).add_(0.01 * h.detach().abs().mean(0))
        return h, (h, *state[1:])

    def unstabilised(self, x_t, state):
        """The paper's equations without the stabiliser m: exp of the raw input gate."""
        h, c, n, m = state
        batch = x_t.shape[0]
        recurrent = torch.cat([(part @ weight).view(batch, 4, size) for part, weight, size in
                               zip(h.split(self.head_sizes, dim=-1), self.recurrent,
                                   self.head_sizes)], dim=2)
        pre = self.input(x_t) + recurrent.reshape(batch, 4 * self.hidden_size)
        i_pre, f_pre, z_pre, o_pre = pre.chunk(4, dim=-1)
        c = torch.sigmoid(f_pre) * c + i_pre.exp() * torch.tanh(z_pre)
        n = torch.sigmoid(f_pre) * n + i_pre.exp()
        h = torch.sigmoid(o_pre) * c / n
        return h, (h, c, n, m)


def build_slstm(input_size, hidden_size, num_layers, dropout, *, bug=None):
    from seqbench.step import from_step

    step = functools.partial(PlantedSLSTMStep, heads=2, bug=bug)
    return from_step(step)(input_size, hidden_size, num_layers, dropout)


#: The bugs that live around a cell's core, planted around `nn.GRU`; the rest inside the
#: sLSTM step.
AROUND = {"state leaks across batches", "num_layers ignored", "dropout ignored",
          "non-causal normalisation", "dropout active in eval mode", "input modified in place",
          "module without batch_first"}


def heldout_cell(bug=None, host=None):
    """The built-in GRU or sLSTM with `bug` planted where it belongs (None: correct)."""
    host = host or ("gru" if bug in AROUND else "slstm")
    build = build_gru if host == "gru" else build_slstm
    return Cell(name=f"{host}-planted", summary=f"seqbench's {host} with a planted bug",
                build=functools.partial(build, bug=bug))


# ---- the speech task with one bug ----


class PlantedSpeechData(SpeechData):
    """SpeechData with the bug `self.bug` (set by `plant`)."""

    bug = None

    def resplit(self):
        """Train and valid drawn again from their pool, as the planted bug draws them."""
        pool = self.sequences["train"] + self.sequences["valid"]
        labels = torch.cat([self.labels["train"], self.labels["valid"]])
        if self.bug == "split sorted by label":  # "the last share of the training files"
            order = np.argsort(labels.numpy(), kind="stable")
            train, valid = order[:-len(self.labels["valid"])], order[-len(self.labels["valid"]):]
        else:  # "split drawn without a seed"
            train, valid = stratified_split(labels.numpy(), self._arguments[2], None)
        for split, rows in (("train", train), ("valid", valid)):
            self.sequences[split] = [pool[i] for i in rows]
            self.labels[split] = labels[rows]

    def batches(self, split, batch_size, seed=None):
        if self.bug == "numpy's global RNG reseeded in batches()" and seed is not None:
            np.random.seed(seed)
        if self.bug == "a shuffle that ignores the seed" and seed is not None:
            seed = 0
        for batch in super().batches(split, batch_size, seed):
            if self.bug == "labels shifted by one item":  # the labels of the next row
                batch.targets = batch.targets.roll(-1)
            yield batch

    def logits(self, outputs, batch):
        if self.bug == "reads the last padded step":
            return outputs[:, -1]
        return super().logits(outputs, batch)

    def loss(self, outputs, batch):
        if self.bug == "loss averaged over padding":  # "mean-pool the frames" for training
            return F.cross_entropy(outputs.mean(1), batch.targets)
        return super().loss(outputs, batch)

    def item_scores(self, outputs, batch):
        correct, weight = super().item_scores(outputs, batch)
        if self.bug == "item_scores per batch":
            return correct.mean().reshape(1), weight.sum().reshape(1)
        return correct, weight


def plant(data, bug):
    data.__class__, data.bug = PlantedSpeechData, bug
    if bug in ("split sorted by label", "split drawn without a seed"):
        data.resplit()
    return data


class PlantedSpeech(SpeechTask):
    """The speech task with one planted bug (None: the built-in task)."""

    def __init__(self, bug=None):
        self.bug = bug
        declare_directions(self, bug)

    def prepare(self, dataset, context, params):
        if self.bug == "torch.manual_seed in prepare()":
            torch.manual_seed(1234)  # "for a reproducible split"
        if self.bug == "a task option the cache ignores":  # the parsed files, by name only
            return plant(cached(context.cache_dir / f"speech-{content_key(dataset)}.pkl",
                                lambda: super(PlantedSpeech, self).prepare(dataset, context,
                                                                           params)), self.bug)
        return plant(super().prepare(dataset, context, params), self.bug)

    def check_case(self):
        case = super().check_case()
        plant(case.data, self.bug)
        return case
