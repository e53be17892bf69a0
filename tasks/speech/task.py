"""Sequence classification: a label for a whole variable-length sequence of features.

Sequences are right-padded in a batch and the label is read from the hidden state at each
sequence's last real frame. A recurrent cell is causal, so frames after the last real one
cannot change that state: padding never changes a prediction (tested), and the cell runs
on ordinary dense batches. `pooling=mean` averages over the real frames instead.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import Batch, DataContext, IndexedData, Param, SeqbenchError, Task
from seqbench.userdata import (
    UserSource,
    existing_file,
    refuse_float32_overflow,
    refuse_foreign_options,
)
from seqbench_tasks.speech.datasets import DATASETS, LOADERS, Sequences
from seqbench_tasks.speech.minirocket import minirocket_predictions
from seqbench_tasks.speech.packaged import PACKAGED, load_packaged
from seqbench_tasks.speech.user_files import aeon_sets, load_user_sequences


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Indices (train, valid): `fraction` of every class goes to valid, chosen by `seed`."""
    rng = np.random.default_rng(seed)
    valid = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        valid += list(members[: max(1, round(fraction * len(members)))])
    valid_set = set(valid)
    train = np.array([i for i in range(len(labels)) if i not in valid_set])
    return train, np.array(sorted(valid))


def stratified_fold(labels: np.ndarray, index: int, folds: int, seed: int) -> tuple[np.ndarray, ...]:
    """Indices (train, valid) of fold `index` of a stratified k-fold split (scikit-learn's).

    A class with fewer sequences than folds is missing from some folds' validation, and
    scikit-learn warns; every sequence is still validated exactly once, so it is allowed.
    """
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    try:
        train, valid = list(splitter.split(np.zeros(len(labels)), labels))[index]
    except ValueError as exc:  # more folds than sequences, or than any class has
        raise SeqbenchError(f"cannot make {folds} stratified folds: {exc}") from None
    return train, valid


class Standardizer:
    """Per-feature mean and standard deviation, fitted on the training frames only (`fit`),
    or given back from a run record (the asr task stores them for transcribing without
    the dataset)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean, self.std = np.asarray(mean), np.asarray(std)

    @classmethod
    def fit(cls, sequences: list[np.ndarray]) -> Standardizer:
        frames = np.concatenate(sequences)
        return cls(frames.mean(axis=0),
                   np.where(frames.std(axis=0) > 1e-8, frames.std(axis=0), 1.0))

    def __call__(self, sequence: np.ndarray) -> np.ndarray:
        return ((sequence - self.mean) / self.std).astype(np.float32)


def check_sequences(sequences: list[np.ndarray], features: int, source: str) -> None:
    """Refuse what the model cannot use: wrong width, empty sequences, NaN or inf."""
    for index, sequence in enumerate(sequences):
        if sequence.ndim != 2 or sequence.shape[1] != features:
            raise SeqbenchError(f"{source}: sequence {index} has {sequence.shape[-1]} features "
                                f"per frame, expected {features}.")
        if len(sequence) == 0:
            raise SeqbenchError(f"{source}: sequence {index} is empty.")
        if not np.isfinite(sequence).all():
            raise SeqbenchError(f"{source}: sequence {index} contains NaN or infinite values.")


class SpeechData(IndexedData):
    """Standardised sequences per split in batches, last-frame (or mean) classification."""

    def __init__(self, dataset: str, splits: Mapping[str, Sequences], valid_fraction: float,
                 valid_seed: int, pooling: str, source: UserSource | None = None,
                 cache_dir: Path | None = None, fold: tuple[int, int] | None = None,
                 refit: bool = False) -> None:
        """`source` is set for the user's files: the split record then names every
        sequence id of train, valid and test. `cache_dir` keeps the MiniRocket baseline's
        predictions (None: computed on every call)."""
        import torch

        train, test = splits["train"], splits["test"]
        self.dataset, self.classes, self.pooling = dataset, train.classes, pooling
        self.official, self.cache_dir = splits, cache_dir
        self._arguments = (dataset, splits, valid_fraction, valid_seed, pooling, source,
                           cache_dir)
        self.input_size = train.features[0].shape[1]
        keep, held = (stratified_split(train.labels, valid_fraction, valid_seed) if fold is None
                      else stratified_fold(train.labels, *fold, seed=valid_seed))
        if refit:  # the whole official training set, as the UCR/UEA protocol trains
            keep = np.arange(len(train.labels))
        self.standardize = Standardizer.fit([train.features[i] for i in keep])
        raw = {
            "train": ([train.features[i] for i in keep], train.labels[keep]),
            "valid": ([train.features[i] for i in held], train.labels[held]),
            "test": (test.features, test.labels),
        }
        self.sequences = {
            split: [torch.from_numpy(self.standardize(s)) for s in features]
            for split, (features, _) in raw.items()
        }
        self.labels = {split: torch.as_tensor(labels) for split, (_, labels) in raw.items()}
        self.source = source and replace(source, items={
            "train": [train.ids[i] for i in keep], "valid": [train.ids[i] for i in held],
            "test": list(test.ids)})

    def describe(self) -> dict[str, Any]:
        return {"lengths": {split: [len(s) for s in seqs] for split, seqs in
                            self.sequences.items()},
                "balance": {split: {name: int(count) for name, count in zip(
                    self.classes, np.bincount(labels.numpy(), minlength=len(self.classes)))}
                    for split, labels in self.labels.items()},
                **(self.source.facts() if self.source else {})}

    def split_sizes(self) -> dict[str, int]:
        return {split: len(s) for split, s in self.sequences.items()}

    def items(self, split: str) -> int:
        return len(self.sequences[split])

    def collate(self, split: str, rows: np.ndarray) -> Batch:
        return collate([self.sequences[split][i] for i in rows], self.labels[split][rows])

    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        from torch import nn

        return nn.Identity(), self.head(hidden_size, params)

    def fold(self, index: int, folds: int) -> SpeechData:
        """Stratified k-fold over the official training set (validation from its folds)."""
        return SpeechData(*self._arguments, fold=(index, folds))

    def refit(self) -> SpeechData:
        """Every official training sequence trained on (the validation ones too)."""
        return SpeechData(*self._arguments, refit=True)

    def log_priors(self):
        """Log class frequencies of the training split (add-one smoothed)."""
        import torch

        counts = torch.bincount(self.labels["train"], minlength=len(self.classes)).double() + 1
        return (counts / counts.sum()).log().float()

    def head(self, hidden_size: int, params: Mapping[str, Any]):
        import torch
        from torch import nn

        head = nn.Linear(hidden_size, len(self.classes))
        with torch.no_grad():  # every cell starts from the class prior, not from uniform
            head.bias.copy_(self.log_priors())
        return head

    def item_scores(self, outputs, batch: Batch):
        correct = (self.logits(outputs, batch).argmax(-1) == batch.targets).double()
        return correct, correct.new_ones(correct.shape)

    def baselines(self) -> dict[str, dict[str, float]]:
        """The majority class of the training split, predicted with the class prior, and
        MiniRocket (`minirocket.py`: the strong non-recurrent reference; it gives no
        probabilities, so no NLL)."""
        import torch
        import torch.nn.functional as F

        test = self.labels["test"]
        logits = self.log_priors().expand(len(test), -1)
        classes = len(self.classes)
        confusion = torch.bincount(test * classes + logits.argmax(-1), minlength=classes ** 2)
        totals = {"nll": float(F.cross_entropy(logits, test, reduction="sum")),
                  "confusion": confusion.double().tolist()}
        predicted = minirocket_predictions(self.official["train"], self.official["test"],
                                           self.cache_dir)
        rocket = np.bincount(test.numpy() * classes + predicted,
                             minlength=classes ** 2).reshape(classes, classes)
        return {"majority_class": self.metrics(totals),
                "minirocket": {"accuracy": float(np.trace(rocket) / rocket.sum()),
                               "macro_f1": macro_f1(rocket)}}

    def logits(self, outputs, batch: Batch):
        """Per-sequence logits from per-frame ones: the last real frame, or the real mean."""
        if self.pooling == "mean":
            mask = batch.mask.unsqueeze(-1).to(outputs.dtype)
            return (outputs * mask).sum(1) / mask.sum(1)
        last = batch.mask.sum(1) - 1
        return outputs[np.arange(len(last)), last]

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        return F.cross_entropy(self.logits(outputs, batch), batch.targets)

    def statistics(self, outputs, batch: Batch):
        import torch
        import torch.nn.functional as F

        logits = self.logits(outputs, batch)
        predicted = logits.argmax(-1)
        classes = len(self.classes)
        confusion = torch.bincount(batch.targets * classes + predicted,
                                   minlength=classes * classes)
        return {"nll": F.cross_entropy(logits, batch.targets, reduction="sum"),
                "confusion": confusion}

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        confusion = np.asarray(totals["confusion"]).reshape(len(self.classes), -1)
        return {"accuracy": float(np.trace(confusion) / confusion.sum()),
                "macro_f1": macro_f1(confusion),
                "nll": totals["nll"] / confusion.sum()}

    def predict(self, model, sequences: list) -> np.ndarray:
        """Class probabilities `[N, classes]` for standardised sequences (in batches)."""
        import torch

        rows = []
        with torch.no_grad():
            device = next(model.parameters()).device
            for start in range(0, len(sequences), 64):
                batch = collate(sequences[start : start + 64], torch.zeros(0)).to(device)
                rows.append(torch.softmax(self.logits(model(batch.inputs)[0], batch), -1).cpu())
        return torch.cat(rows).numpy()

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """The test confusion matrix as CSV and PNG."""
        predicted = self.predict(model, self.sequences["test"]).argmax(1)
        classes = len(self.classes)
        confusion = np.bincount(self.labels["test"].numpy() * classes + predicted,
                                minlength=classes * classes).reshape(classes, classes)
        csv_path = run_dir / "confusion_matrix.csv"
        with open(csv_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["true \\ predicted", *self.classes])
            for name, row in zip(self.classes, confusion):
                writer.writerow([name, *row])
        return [csv_path, plot_confusion(confusion, self.classes, run_dir / "confusion_matrix.png"),
                *(self.source.write(run_dir) if self.source else [])]


def macro_f1(confusion: np.ndarray) -> float:
    """Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN)."""
    tp = np.diag(confusion).astype(float)
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1.mean())


def collate(sequences: list, labels) -> Batch:
    import torch

    lengths = torch.tensor([len(s) for s in sequences])
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
    mask = torch.arange(padded.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return Batch(inputs=padded, targets=labels, mask=mask)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Test confusion matrix (accuracy {np.trace(confusion) / confusion.sum():.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def read_user_sequences(path: Path, features: int) -> tuple[list[str], list[np.ndarray]]:
    """A CSV with a `sequence` id column and one column per feature, one row per frame."""
    path = existing_file(path, "input file")
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "sequence":
            raise SeqbenchError(f"'{path}': the first column must be 'sequence' (an id).")
        if len(header) - 1 != features:
            raise SeqbenchError(f"'{path}' has {len(header) - 1} feature columns, the model "
                                f"expects {features}.")
        groups: dict[str, list[list[float]]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                groups.setdefault(row[0], []).append([float(v) for v in row[1:]])
            except ValueError:
                raise SeqbenchError(f"'{path}' line {line}: not a number.") from None
            refuse_float32_overflow(groups[row[0]][-1], lambda at: f"'{path}' line {line}, "
                                                                   f"column '{header[at[0] + 1]}'")
    ids = list(groups)
    sequences = [np.asarray(groups[i], dtype=np.float32) for i in ids]
    check_sequences(sequences, features, str(path))
    return ids, sequences


class SpeechTask(Task):
    name = "speech"
    #: In its code it is generic labelled-sequence classification; speech features (Japanese
    #: Vowels, FSDD MFCCs) are its default datasets, any UCR/UEA set or CSV its others.
    summary = ("Labelled-sequence classification (speech features by default): a label per "
               "variable-length sequence (accuracy, macro-F1)")
    datasets = {**DATASETS, **{name: f"{folder.name} from the UCR/UEA archive (ships with "
                                     "aeon, offline)" for name, folder in aeon_sets().items()},
                **{name: packaged.summary for name, packaged in PACKAGED.items()}}
    default_dataset = "japanese-vowels"
    primary_metric = "accuracy"
    direction = "maximize"
    select_by = ("nll", "minimize")  # ~40 validation sequences: accuracy saturates at 1.0
    stratified = ("valid",)  # held out of train per class (the conformance kit checks it)
    defaults = {"epochs": 100, "hidden_size": 64, "batch_size": 32, "lr": 1e-2, "patience": 20,
                "min_epochs": 10}
    search = {"hidden_size": (16, 256), "layers": (1, 2), "batch_size": (8, 64)}
    #: 270 training recordings: one 40-sequence validation split picks winners by luck, and
    #: the smaller archive sets would validate on a handful of series (Coffee: 4; PigCVP,
    #: one per class, would hold out half its training set).
    selection_folds = {name: 5 for name in (
        "japanese-vowels", "acsf1", "arrow-head", "basic-motions", "coffee", "gun-point",
        "italy-power-demand", "osu-leaf", "pickup-gesture-wiimote-z", "pig-cvp")}
    params = (
        Param("pooling", str, "last", "read the label from the last real frame or the mean",
              choices=("last", "mean")),
        Param("valid_fraction", float, 0.15, "share of each class held out of train for "
              "validation", low=0.05, high=0.5, tune=False),
        Param("valid_seed", int, 0, "which sequences are held out for validation", tune=False),
        Param("path", str, "", "your file: a long-format CSV (dataset 'csv') or a UCR/UEA "
              ".ts file (dataset 'ts')", tune=False),
        Param("test", str, "", "your test file in the same format (default: a stable 20% of "
              "the sequence ids)", tune=False),
        Param("id", str, "sequence", "sequence id column of your CSV", tune=False),
        Param("label", str, "label", "label column of your CSV", tune=False),
    )
    generate_params = (
        Param("input", str, "", "CSV of sequences to label (column 'sequence' then one per "
              "feature); default: the test split"),
    )

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> SpeechData:
        refuse_foreign_options(dataset, params, self.params, {
            "path": ("csv", "ts"), "test": ("csv", "ts"), "id": ("csv",), "label": ("csv",)})
        if dataset in LOADERS:
            splits, source = LOADERS[dataset](context), None
        elif dataset in PACKAGED:
            splits, source = load_packaged(dataset, context)
        else:
            splits, source = load_user_sequences(dataset, params, context)
        for split, data in splits.items():
            check_sequences(data.features, data.features[0].shape[1], f"{dataset} {split}")
        # Packaged sets load without a context (a notebook's `prepare(name, None, ...)`);
        # the MiniRocket baseline is then computed uncached.
        cache_dir = context.cache_dir if context is not None else None
        return SpeechData(dataset, splits, params["valid_fraction"], params["valid_seed"],
                          params["pooling"], source, cache_dir)

    def check_case(self):
        """Hand-checkable sequences for the conformance kit (see `check.py`)."""
        from seqbench_tasks.speech.check import speech_check_case

        return speech_check_case()

    def generate(self, model, data: SpeechData, out_dir: Path, options: Mapping[str, Any]):
        import torch

        if options["input"]:
            ids, raw = read_user_sequences(Path(options["input"]), data.input_size)
            sequences, truth = [torch.from_numpy(data.standardize(s)) for s in raw], None
        else:
            sequences, truth = data.sequences["test"], data.labels["test"].tolist()
            ids = [str(i) for i in range(len(sequences))]
        probabilities = data.predict(model, sequences)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "predictions.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sequence", "predicted", *(["true"] if truth else []),
                             *[f"p_{c}" for c in data.classes]])
            for row, (name, p) in enumerate(zip(ids, probabilities)):
                label = [data.classes[truth[row]]] if truth else []
                writer.writerow([name, data.classes[int(p.argmax())], *label,
                                 *[f"{v:.4f}" for v in p]])
        return [path]
