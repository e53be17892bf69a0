"""Training throughput: seqbench's Lightning path against a bare PyTorch loop.

Both sides train the same model (same initial weights) on the same batches in the same
order, with the same optimizer, clipping and per-epoch validation; the bare loop is what a
careful person would write by hand. We alternate the two sides several times and report
the median time per epoch and the ratio seqbench / bare (seqbench writing its resume
points, the bare loop only its best weights), and the share of seqbench's time spent writing
resume points (`seqbench/resume.py` bounds it at 2%). Ratios, not seconds, are the result:
this machine is shared and noisy, but both sides see the same noise.

seqbench trains through Lightning (its optimizer wrappers, clipping, precision and
strategies, a DataLoader, ModelCheckpoint) with two departures on the training path: a
training item holds 8 batches, each one step under manual optimisation
(`seqbench.loaders.BATCHES_PER_ITEM`), and the training loss is read once per epoch from a
device-side sum instead of `self.log`-ed every step. `--idiomatic` adds two sides that show
what each saves: seqbench with one batch per item, and idiomatic Lightning (automatic
optimisation of one batch per item, the loss `self.log`-ed at every step).

    python benchmarks/throughput.py [--epochs 10] [--repeats 3] [--threads N] [--workload W]
                                    [--logger csv|tensorboard|mlflow] [--idiomatic]

With --logger, the seqbench side also sends every epoch's row to that tracker, as
`seqbench run --logger` does (the bare side logs nothing).

Workloads (synthetic data shaped like the real thing, so no download is needed):
  music-256  88 keys -> LSTM 256 -> 88 logits, 100 batches of 16 piano-roll pieces
  jv-sized   12 features -> LSTM 64 -> 12, 17 batches of 16 sequences of 7-29 frames
             (Japanese Vowels: 270 training sequences); tiny steps expose per-step overhead
  ptb-small  Zaremba-small shapes: 10k-word vocabulary -> 2 x LSTM 200 -> 10k softmax,
             batch 20, bptt 20, SGD, state carried between windows; 80k training tokens
             (PTB has 930k) and a 10k-token validation stream scored as one row
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from seqbench import Batch, IndexedData, TaskData
from seqbench.config import build_spec
from seqbench.loaders import loader, order_seed
from seqbench.model import SequenceModel, detach_state, make_optimizer
from seqbench.registry import get_cell, get_task
from seqbench.resume import RESUME_POINT, ResumePoint, StopRequest
from seqbench.runs import HistoryWriter
from seqbench.train import make_trainer, quiet_lightning


class FrameData(IndexedData):
    """Next-frame prediction of binary frames with `features` columns; lengths vary per piece."""

    def __init__(self, features: int, pieces: int, low: int, high: int, batch: int) -> None:
        rng = np.random.default_rng(0)
        self.input_size = features
        self.splits = {}
        for split, count in (("train", pieces), ("valid", max(pieces // 4, batch))):
            lengths = rng.integers(low, high + 1, size=count)
            self.splits[split] = [
                torch.from_numpy((rng.random((n, features)) < 0.1).astype(np.float32))
                for n in lengths
            ]

    def items(self, split: str) -> int:
        return len(self.splits[split])

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        group = [self.splits[split][i] for i in rows]
        longest = max(len(p) for p in group)
        padded = torch.zeros(len(group), longest, self.input_size)
        mask = torch.zeros(len(group), longest - 1, dtype=torch.bool)
        for row, piece in enumerate(group):
            padded[row, : len(piece)] = piece
            mask[row, : len(piece) - 1] = True
        return Batch(inputs=padded[:, :-1], targets=padded[:, 1:], mask=mask)

    def modules(self, hidden_size: int, params: Mapping) -> tuple[nn.Module, nn.Module]:
        return nn.Identity(), nn.Linear(hidden_size, self.input_size)

    def _nll(self, outputs, batch):
        per_key = nn.functional.binary_cross_entropy_with_logits(
            outputs, batch.targets, reduction="none"
        )
        return (per_key.sum(-1) * batch.mask).sum(), batch.mask.sum()

    def loss(self, outputs, batch):
        nll, frames = self._nll(outputs, batch)
        return nll / frames

    def statistics(self, outputs, batch):
        nll, frames = self._nll(outputs, batch)
        return {"nll": nll, "frames": frames}

    def metrics(self, totals):
        return {"nll": totals["nll"] / totals["frames"]}


def frames(features: int, pieces: int, low: int, high: int, batch: int, hidden: int):
    data = FrameData(features, pieces, low, high, batch)
    return data, build_spec("music", "lstm", settings={"hidden_size": hidden,
                                                       "batch_size": batch, "patience": 0})


def token_stream(vocab: int, train: int, valid: int, batch: int):
    """Random tokens: the cost of a step does not depend on what the tokens say."""
    from seqbench_tasks.lm.corpus import Streams
    from seqbench_tasks.lm.task import LanguageData

    rng = np.random.default_rng(0)
    ids = {split: rng.integers(0, vocab, size=n) for split, n in
           (("train", train), ("valid", valid), ("test", valid))}
    spec = build_spec("lm", "lstm", settings={"patience": 0, "batch_size": batch})
    data = LanguageData("bench", Streams(ids, [f"w{i}" for i in range(vocab)], "word"),
                        spec.task_params)
    return data, spec


WORKLOADS = {
    "music-256": lambda: frames(88, 1600, 40, 80, batch=16, hidden=256),
    "jv-sized": lambda: frames(12, 270, 7, 29, batch=16, hidden=64),
    "ptb-small": lambda: token_stream(10_000, 80_000, 10_000, batch=20),
}


class Idiomatic(SequenceModel):
    """seqbench's model as idiomatic Lightning writes it: automatic optimisation of one
    batch per item (Lightning's closure, zero_grad and step; clipping stays in
    `on_before_optimizer_step`, where Lightning calls it), Lightning stepping the LR schedule,
    and the training loss logged with `self.log` at every step (accumulated and reduced at
    the epoch's end)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.automatic_optimization = True

    def lr_schedulers(self):
        return None  # Lightning steps the schedule itself under automatic optimisation

    def training_step(self, item, index):
        ((batch, _),) = item
        loss = self.training_loss(batch)
        self.log("train_loss_step", loss, on_step=False, on_epoch=True, sync_dist=True,
                 batch_size=batch.inputs.shape[0])
        return loss


@contextmanager
def batches_per_item(batches: int):
    """Loaders made while inside hold `batches` batches per item."""
    import seqbench.loaders

    kept = seqbench.loaders.BATCHES_PER_ITEM
    seqbench.loaders.BATCHES_PER_ITEM = batches
    try:
        yield
    finally:
        seqbench.loaders.BATCHES_PER_ITEM = kept


def seqbench_epochs(data: TaskData, spec, epochs: int, logger: str | None = None,
                    model_class: type = SequenceModel) -> tuple[float, float]:
    """Seconds per epoch through seqbench's own model and trainer (and tracker, if any), with
    its resume points (as every tested run writes them), and the share of the time spent
    writing them."""
    import tempfile
    from pathlib import Path

    from seqbench import loggers

    torch.manual_seed(0)
    model = model_class(get_task(spec.task), data, get_cell(spec.cell), spec)
    spec = spec.with_settings({"epochs": epochs})
    with tempfile.TemporaryDirectory() as tmp:
        tracker = loggers.start(logger, spec, Path(tmp))
        if tracker is not None:
            model.epoch_listeners.append(tracker)
        resume_points = ResumePoint(Path(tmp) / RESUME_POINT,
                                    HistoryWriter(Path(tmp) / "history.csv"), StopRequest())
        trainer = make_trainer(spec, Path(tmp), "val_nll", "min", show_progress=False,
                               extra_callbacks=[resume_points])
        started = time.perf_counter()
        trainer.fit(model, loader(data, "train", spec.hparams["batch_size"], seed=0),
                    loader(data, "valid", spec.hparams["batch_size"]))
        seconds = time.perf_counter() - started
        if tracker is not None:
            tracker.finish({})
        return seconds / epochs, resume_points.spent / seconds


def bare_epochs(data: TaskData, spec, epochs: int) -> float:
    """Seconds per epoch of the hand-written loop: same model, batches, optimizer, clipping,
    and, like any loop that does early stopping, the best weights saved when they improve."""
    import tempfile
    from pathlib import Path

    torch.manual_seed(0)
    model = SequenceModel(get_task(spec.task), data, get_cell(spec.cell), spec)
    optimizer = make_optimizer(model.parameters(), spec.hparams)
    clip = spec.hparams["clip"]
    carry = get_task(spec.task).carry_state
    best = float("inf")
    tmp = tempfile.TemporaryDirectory()
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        state = None
        for batch in data.batches("train", spec.hparams["batch_size"],
                                  seed=order_seed(0, epoch)):  # seqbench's order
            outputs, state = model(batch.inputs, state)
            state = detach_state(state) if carry else None  # truncated BPTT
            loss = data.loss(outputs, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
        model.eval()
        totals: dict[str, torch.Tensor] = {}
        state = None
        with torch.no_grad():
            for batch in data.batches("valid", spec.hparams["batch_size"]):
                outputs, state = model(batch.inputs, state)
                state = state if carry else None
                for key, value in data.statistics(outputs, batch).items():
                    totals[key] = totals.get(key, 0) + value
        nll = data.metrics({k: float(v) for k, v in totals.items()})["nll"]
        if nll < best:
            best = nll
            torch.save(model.state_dict(), Path(tmp.name) / "best.pt")
    seconds = (time.perf_counter() - started) / epochs
    tmp.cleanup()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--logger", choices=["csv", "tensorboard", "mlflow"], default=None)
    parser.add_argument("--idiomatic", action="store_true",
                        help="also time seqbench with one batch per item, and idiomatic "
                             "Lightning")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet_lightning()
    torch.use_deterministic_algorithms(True)  # seqbench always trains deterministically
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.epochs} epochs x {args.repeats} repeats (alternating)"
          + (f", seqbench logging to {args.logger}" if args.logger else ""))
    print(f"{'workload':<10} {'bare s/epoch':>13} {'seqbench s/epoch':>17} {'ratio':>7} "
          f"{'resume points':>14}"
          + (f" {'1 batch per item':>17} {'idiomatic':>10}" if args.idiomatic else ""))
    for name in args.workload or sorted(WORKLOADS):
        data, spec = WORKLOADS[name]()
        bare, ours, resume_share, single, idiomatic = [], [], [], [], []
        bare_epochs(data, spec, 1)  # warm-up: allocator, kernels, imports
        for _ in range(args.repeats):
            bare.append(bare_epochs(data, spec, args.epochs))
            seconds, share = seqbench_epochs(data, spec, args.epochs, args.logger)
            ours.append(seconds)
            resume_share.append(share)
            if args.idiomatic:
                with batches_per_item(1):
                    single.append(seqbench_epochs(data, spec, args.epochs, args.logger)[0])
                    idiomatic.append(seqbench_epochs(data, spec, args.epochs, args.logger,
                                                     Idiomatic)[0])
        b, o = statistics.median(bare), statistics.median(ours)
        print(f"{name:<10} {b:>13.4f} {o:>17.4f} {o / b:>7.3f} "
              f"{statistics.median(resume_share):>14.2%}"
              + (f" {statistics.median(single) / b:>17.3f}"
                 f" {statistics.median(idiomatic) / b:>10.3f}" if args.idiomatic else ""))


if __name__ == "__main__":
    main()
