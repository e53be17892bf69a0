"""Conformance checks for task plugins: what a `Task` and its `TaskData` promise the core.

The checks run on a tiny dataset so that they are fast and offline: the task's own
`Task.check_case()` data by default, or data the caller passes. They probe the task with a
random model built exactly as training builds it (`seqbench.model.SequenceModel`: the task's
encoder, a one-layer torch GRU with 8 units standing in for a cell, the task's head), so
"works with the kit" means "works in `seqbench run`".
"""

from __future__ import annotations

import functools
import hashlib
import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from seqbench import registry
from seqbench.config import RunSpec, core_params_for
from seqbench.contracts import Batch, Cell, CheckCase, DataContext, Task, TaskData, plain_totals
from seqbench.params import resolve
from seqbench.testing.kit import Check, CheckSkipped, expect, with_skips

SPLITS = ("train", "valid", "test")
DIRECTIONS = ("minimize", "maximize")
#: Batch size for probing data that did not come from the task's check case.
BATCH_SIZE = 8
PROBE_HIDDEN = 8


def _probe_cell(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    return torch.nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                        batch_first=True)


#: The stand-in cell: a plain torch GRU, which satisfies the cell contract as it is.
PROBE_CELL = Cell(name="probe", summary="torch GRU used by seqbench.testing", build=_probe_cell)


class TaskSubject:
    """The task under test and its tiny data, resolved once, on first use by any check.

    Lazy so that building the checks (e.g. at pytest collection) loads nothing, and shared
    so that the data is prepared once for all checks.
    """

    def __init__(self, task: str | Task, data: TaskData | Callable[[], TaskData] | None,
                 dataset: str | None, data_dir: str | Path | None,
                 params: Mapping[str, Any] | None) -> None:
        self._task, self._data, self._dataset = task, data, dataset
        self._data_dir, self._params = data_dir, dict(params or {})

    @functools.cached_property
    def task(self) -> Task:
        return registry.get_task(self._task) if isinstance(self._task, str) else self._task

    @functools.cached_property
    def case(self) -> CheckCase | None:
        return self.task.check_case()

    @functools.cached_property
    def params(self) -> dict[str, Any]:
        return resolve(self.task.params, self._params, f"task '{self.task.name}'")

    @functools.cached_property
    def dataset(self) -> str:
        if self._dataset is not None:
            return self._dataset
        if self._data is None and self.case is not None and self.case.dataset is not None:
            return self.case.dataset
        return self.task.default_dataset

    @functools.cached_property
    def from_case(self) -> bool:
        return self._data is None and self._dataset is None and self.case is not None

    @functools.cached_property
    def data(self) -> TaskData:
        if self._data is not None:
            return self._data if isinstance(self._data, TaskData) else self._data()
        if self.from_case:
            return self.case.data
        from seqbench.data import resolve_cache_dir, resolve_data_dir

        context = DataContext(data_dir=resolve_data_dir(self._data_dir),
                              cache_dir=resolve_cache_dir())
        return self.task.prepare(self.dataset, context, self.params)

    @property
    def batch_size(self) -> int:
        return self.case.batch_size if self.from_case else BATCH_SIZE

    def first_batch(self, split: str) -> Batch:
        batch = next(iter(self.data.batches(split, self.batch_size)), None)
        expect(batch is not None, f"at least one '{split}' batch", "none")
        return batch

    def model(self):
        """A freshly initialised `encoder -> GRU(8) -> head` model, as training builds it."""
        from seqbench.model import SequenceModel  # Lightning: imported by task checks only

        hparams = resolve(core_params_for(self.task, self.dataset),
                          {"hidden_size": PROBE_HIDDEN, "layers": 1}, "training")
        spec = RunSpec(task=self.task.name, dataset=self.dataset, cell=PROBE_CELL.name,
                       hparams=hparams, task_params=self.params)
        torch.manual_seed(0)
        return SequenceModel(self.task, self.data, PROBE_CELL, spec)


def task_label(task: str | Task) -> str:
    return task if isinstance(task, str) else task.name


# ---- helpers ----

def _split_metrics(data: TaskData, split: str, batch_size: int,
                   outputs: Callable[[Batch], Any]) -> dict[str, float]:
    """Statistics summed over `split`, turned into metrics, exactly as evaluation does."""
    totals: dict[str, Any] = {}
    for batch in data.batches(split, batch_size):
        for key, value in data.statistics(outputs(batch), batch).items():
            value = value.detach()
            totals[key] = totals[key] + value if key in totals else value
    return data.metrics(plain_totals(totals))


def _example_hashes(batch: Batch) -> list[str]:
    """One content hash per example (batch row): its real steps of every per-row tensor."""
    rows = batch.inputs.shape[0]
    tensors = [batch.inputs, batch.targets, *(v for v in batch.extra.values()
                                              if isinstance(v, torch.Tensor))]
    hashes = []
    for row in range(rows):
        digest = hashlib.sha256()
        for tensor in tensors:
            if tensor.dim() == 0 or tensor.shape[0] != rows:
                continue
            value = tensor[row]
            if batch.mask is not None and value.shape[:1] == batch.mask.shape[1:2]:
                value = value[batch.mask[row]]
            digest.update(str((tuple(value.shape), value.dtype)).encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        hashes.append(digest.hexdigest())
    return hashes


# ---- the checks ----

def check_declarations(subject: TaskSubject) -> None:
    task = subject.task
    for attribute in ("name", "summary", "primary_metric", "default_dataset"):
        value = getattr(task, attribute, None)
        expect(isinstance(value, str) and value, f"a non-empty string Task.{attribute}",
               repr(value))
    expect(task.datasets and task.default_dataset in task.datasets,
           "default_dataset to be one of Task.datasets",
           f"{task.default_dataset!r} not in {list(task.datasets)}")
    expect(task.direction in DIRECTIONS, f"Task.direction in {DIRECTIONS}", repr(task.direction))
    unknown = sorted(set(task.primary_metrics) - set(task.datasets))
    expect(not unknown, "primary_metrics keyed by the task's datasets", f"{unknown}")
    if task.select_by is not None:
        expect(task.select_by[1] in DIRECTIONS, f"select_by's direction in {DIRECTIONS}",
               repr(task.select_by))
    core_params_for(task)  # raises on a default that is not a core hyperparameter
    for group in ("params", "generate_params"):
        names = [p.name for p in getattr(task, group)]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        expect(not duplicated, f"unique names in Task.{group}", f"duplicates {duplicated}")


def check_splits_nonempty(subject: TaskSubject) -> None:
    data, size = subject.data, subject.batch_size
    for split in SPLITS:
        count = sum(1 for _ in data.batches(split, size))
        expect(count > 0, f"a non-empty '{split}' split", "no batches")
        declared = data.num_batches(split, size)
        expect(declared == count, f"num_batches('{split}', {size}) == {count} (batches yielded)",
               f"{declared}")
    empty = {split: n for split, n in data.split_sizes().items() if n <= 0}
    expect(not empty, "split_sizes() > 0 for every split", f"{empty}")


def check_batches(subject: TaskSubject) -> None:
    for split in SPLITS:
        batch = subject.first_batch(split)
        expect(isinstance(batch, Batch), "batches to be seqbench.Batch objects",
               type(batch).__name__)
        rows = batch.inputs.shape[0]
        expect(batch.targets.shape[:1] == (rows,),
               f"targets with the inputs' batch size {rows} ('{split}')",
               f"targets of shape {tuple(batch.targets.shape)}")
        if batch.mask is not None:
            expect(batch.mask.dtype == torch.bool and batch.mask.shape == batch.inputs.shape[:2],
                   f"a bool mask of shape {tuple(batch.inputs.shape[:2])} ('{split}')",
                   f"{batch.mask.dtype} of shape {tuple(batch.mask.shape)}")
    first, second = (list(subject.data.batches("train", subject.batch_size, seed=1))
                     for _ in range(2))
    same = len(first) == len(second) and all(
        torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
        for a, b in zip(first, second))
    expect(same, "the same training batches for the same shuffle seed", "different batches")


def check_splits_disjoint(subject: TaskSubject) -> None:
    """Real corpora can repeat content across splits (newswire boilerplate in PTB repeats
    whole 20-token windows), so the message gives the share; a copied split shows as 100%."""
    owner: dict[str, str] = {}  # content hash -> the first split it appeared in
    shared: list[str] = []
    total = 0
    for split in SPLITS:
        first_seen: dict[str, str] = {}
        for index, batch in enumerate(subject.data.batches(split, subject.batch_size)):
            for row, digest in enumerate(_example_hashes(batch)):
                first_seen.setdefault(digest, f"{split} batch {index} row {row}")
                total += split != SPLITS[0]
        shared += [f"{where} is also in {owner[digest]}"
                   for digest, where in first_seen.items() if digest in owner]
        for digest in first_seen:
            owner.setdefault(digest, split)
    expect(not shared, "no example (content hash of a batch row) in two splits",
           f"{len(shared)} of the {total} valid and test examples also in an earlier split "
           f"({len(shared) / max(total, 1):.1%}), e.g. {shared[0] if shared else ''}")


def check_input_size(subject: TaskSubject) -> None:
    data = subject.data
    expect(isinstance(data.input_size, int) and data.input_size > 0,
           "TaskData.input_size to be a positive int", repr(getattr(data, "input_size", None)))
    batch = subject.first_batch("train")
    features = data.encoder(subject.params)(batch.inputs)
    wanted = (*batch.inputs.shape[:2], data.input_size)
    expect(tuple(features.shape) == wanted,
           f"encoder output [batch, time, input_size] = {wanted}", f"{tuple(features.shape)}")


def check_loss_finite(subject: TaskSubject) -> None:
    model = subject.model().train()
    batch = subject.first_batch("train")
    outputs, _ = model(batch.inputs)
    loss = subject.data.loss(outputs, batch)
    expect(isinstance(loss, torch.Tensor) and loss.dim() == 0,
           "loss() to return a 0-d tensor", repr(getattr(loss, "shape", loss)))
    expect(torch.isfinite(loss), "a finite loss on a random model", f"{float(loss.detach())}")
    loss.backward()
    bad = [name for name, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    expect(not bad, "finite gradients of the loss", f"non-finite for {bad}")


def check_metrics_declared(subject: TaskSubject) -> None:
    task, data = subject.task, subject.data
    model = subject.model().eval()
    with torch.no_grad():
        metrics = _split_metrics(data, "valid", subject.batch_size,
                                 lambda batch: model(batch.inputs)[0])
    primary = task.primary(subject.dataset)
    wanted = [primary] + ([task.select_by[0]] if task.select_by else [])
    for name in wanted:
        expect(name in metrics, f"metric '{name}' among metrics()", f"{sorted(metrics)}")
        expect(math.isfinite(float(metrics[name])),
               f"a finite '{name}' on a random model", f"{metrics[name]}")
    for baseline, values in data.baselines().items():
        unknown = sorted(set(values) - set(metrics))
        expect(not unknown, f"baseline '{baseline}' to report metrics() names",
               f"{unknown} (metrics: {sorted(metrics)})")


def check_metrics_case(subject: TaskSubject) -> None:
    case = subject.case
    if case is None:
        raise CheckSkipped(f"task '{subject.task.name}' supplies no Task.check_case()")
    with torch.no_grad():
        metrics = _split_metrics(case.data, case.split, case.batch_size, case.predict)
    for name, value in case.expected.items():
        expect(name in metrics, f"metric '{name}' on the check case", f"{sorted(metrics)}")
        expect(math.isclose(float(metrics[name]), value, rel_tol=1e-4, abs_tol=1e-6),
               f"{name}={value:.6g} on the task's check case", f"{name}={metrics[name]:.6g}")


def _files_written(what: str, written: Any, out_dir: Path) -> None:
    expect(isinstance(written, list), f"{what} to return a list of paths",
           type(written).__name__)
    for path in map(Path, written):
        expect(path.is_file() and path.stat().st_size > 0,
               f"every path {what} returns to be a non-empty file", f"'{path}'" +
               (" (empty)" if path.is_file() else " (missing)"))
        expect(path.resolve().is_relative_to(out_dir.resolve()),
               f"the files of {what} inside {out_dir}", f"'{path}'")


def check_generate(subject: TaskSubject) -> None:
    task = subject.task
    if task.generate is None:
        raise CheckSkipped(f"task '{task.name}' does not declare generate()")
    options = resolve(task.generate_params, {}, f"generate for task '{task.name}'")
    model = subject.model().eval()
    with tempfile.TemporaryDirectory() as folder:
        out_dir = Path(folder) / "generated"
        written = task.generate(model, subject.data, out_dir, options)
        expect(written, "generate() to write at least one file", "an empty list")
        _files_written("generate()", written, out_dir)


def check_artifacts(subject: TaskSubject) -> None:
    model = subject.model().eval()
    with tempfile.TemporaryDirectory() as folder:
        _files_written("artifacts()", subject.data.artifacts(model, Path(folder)), Path(folder))


TASK_CHECKS: tuple[Callable[[TaskSubject], None], ...] = (
    check_declarations,
    check_splits_nonempty,
    check_batches,
    check_splits_disjoint,
    check_input_size,
    check_loss_finite,
    check_metrics_declared,
    check_metrics_case,
    check_generate,
    check_artifacts,
)


def task_checks(task: str | Task, data: TaskData | Callable[[], TaskData] | None = None, *,
                dataset: str | None = None, data_dir: str | Path | None = None,
                params: Mapping[str, Any] | None = None,
                skip: Mapping[str, str] | None = None) -> list[Check]:
    """The checks for `task`, sharing one lazily prepared subject."""
    subject = TaskSubject(task, data, dataset, data_dir, params)

    def bind(check: Callable[[TaskSubject], None]) -> Check:
        return Check(check.__name__, lambda: check(subject))

    return with_skips([bind(check) for check in TASK_CHECKS], skip)
