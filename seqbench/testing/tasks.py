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
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from seqbench import registry
from seqbench.config import build_spec
from seqbench.contracts import Batch, Cell, CheckCase, DataContext, Task, TaskData, plain_totals
from seqbench.declarations import task_problems
from seqbench.errors import SeqbenchError
from seqbench.params import resolve
from seqbench.testing import composing
from seqbench.testing.composing import outputs_of
from seqbench.testing.kit import Check, CheckSkipped, expect, where, with_skips

SPLITS = ("train", "valid", "test")
#: Batch size for probing data that did not come from the task's check case.
BATCH_SIZE = 8
PROBE_HIDDEN = 8
#: Adam steps `check_learns` allows for halving the loss on two batches.
LEARN_STEPS = 200


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
                 params: Mapping[str, Any] | None, max_overlap: float = 0.0) -> None:
        self._task, self._data, self._dataset = task, data, dataset
        self._data_dir, self._params = data_dir, dict(params or {})
        self.max_overlap = max_overlap

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
        return self.task.prepare(self.dataset, self.context(), self.params)

    def context(self) -> DataContext:
        from seqbench.datafiles import resolve_cache_dir, resolve_data_dir

        return DataContext(data_dir=resolve_data_dir(self._data_dir),
                           cache_dir=resolve_cache_dir())

    def offline(self, dataset: str, params: Mapping[str, Any]) -> TaskSubject:
        """This task on the real `dataset` with `params` added, prepared as `seqbench run`
        prepares it but with downloads off; `CheckSkipped` (saying why) when the files are
        not here. A `SeqbenchError` is the one-line error a user would see, so the data is
        "not available" rather than broken."""
        from seqbench.datafiles import OFFLINE_ENV

        given = {**self._params, **params}
        saved = os.environ.get(OFFLINE_ENV)
        os.environ[OFFLINE_ENV] = "1"
        try:
            data = self.task.prepare(dataset, self.context(),
                                     resolve(self.task.params, given, f"task '{self.task.name}'"))
        except SeqbenchError as exc:
            raise CheckSkipped(f"dataset '{dataset}' with {given or 'default settings'} is not "
                               f"available offline here: {exc}") from exc
        finally:
            if saved is None:
                del os.environ[OFFLINE_ENV]
            else:
                os.environ[OFFLINE_ENV] = saved
        return TaskSubject(self.task, data, dataset, self._data_dir, given, self.max_overlap)

    @property
    def batch_size(self) -> int:
        return self.case.batch_size if self.from_case else BATCH_SIZE

    def first_batch(self, split: str) -> Batch:
        batch = next(iter(self.data.batches(split, self.batch_size)), None)
        expect(batch is not None, f"at least one '{split}' batch", "none")
        return batch

    def model(self, hidden_size: int = PROBE_HIDDEN):
        """A freshly initialised `encoder -> GRU(8) -> head` model, as training builds it
        (a task that composes cells builds its network around GRU stacks instead)."""
        from seqbench.model import SequenceModel  # Lightning: imported by task checks only

        _expect_declarations(self.task)
        spec = build_spec(self.task, PROBE_CELL, self.dataset,
                          {"hidden_size": hidden_size, "layers": 1,
                           **{f"task.{key}": value for key, value in self._params.items()}})
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

def _expect_declarations(task: Task) -> None:
    problems = task_problems(task)
    expect(not problems, "a well-formed task declaration (what the registry checks at load)",
           "; ".join(problems))


def check_declarations(subject: TaskSubject) -> None:
    _expect_declarations(subject.task)


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
        # A composed network's inputs and targets may differ in length (a source sentence
        # and its translation); its mask marks the targets' real steps.
        steps = batch.targets if composing.composes(subject) else batch.inputs
        if batch.mask is not None:
            expect(batch.mask.dtype == torch.bool and batch.mask.shape == steps.shape[:2],
                   f"a bool mask of shape {tuple(steps.shape[:2])} ('{split}')",
                   f"{batch.mask.dtype} of shape {tuple(batch.mask.shape)}")
    first, second = (list(subject.data.batches("train", subject.batch_size, seed=1))
                     for _ in range(2))
    same = len(first) == len(second) and all(
        torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
        for a, b in zip(first, second))
    expect(same, "the same training batches for the same shuffle seed", "different batches")


def check_splits_disjoint(subject: TaskSubject) -> None:
    """Real corpora can repeat content across splits (newswire boilerplate in PTB repeats
    whole 20-token windows, the Bach chorales repeat a harmonisation), so the message gives
    the share, and `max_overlap` tolerates a known one; a copied split shows as 100%."""
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
    share = len(shared) / max(total, 1)
    allowed = (f"at most {subject.max_overlap:.1%} of the valid and test examples"
               if subject.max_overlap else "no example")
    expect(share <= subject.max_overlap,
           f"{allowed} (content hash of a batch row) in two splits",
           f"{len(shared)} of the {total} valid and test examples also in an earlier split "
           f"({share:.1%}), e.g. {shared[0] if shared else ''}")


def check_input_size(subject: TaskSubject) -> None:
    if composing.composes(subject):  # no encoder: the widths its stacks ask for instead
        composing.check_stacks(subject)
        return
    data = subject.data
    expect(isinstance(data.input_size, int) and data.input_size > 0,
           "TaskData.input_size to be a positive int", repr(getattr(data, "input_size", None)))
    batch = subject.first_batch("train")
    features = data.modules(1, subject.params)[0](batch.inputs)
    wanted = (*batch.inputs.shape[:2], data.input_size)
    expect(tuple(features.shape) == wanted,
           f"encoder output [batch, time, input_size] = {wanted}", f"{tuple(features.shape)}")


def check_loss_finite(subject: TaskSubject) -> None:
    model = subject.model().train()
    batch = subject.first_batch("train")
    loss = subject.data.loss(outputs_of(model, batch), batch)
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
                                 lambda batch: outputs_of(model, batch))
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


#: What `check_default_dataset` and `check_choices` repeat on real data: the checks that
#: look at the data itself, not at the declarations or the check case.
DATA_CHECKS = (check_splits_nonempty, check_batches, check_splits_disjoint, check_input_size,
               check_loss_finite)


def _data_checks(subject: TaskSubject, label: str) -> None:
    _expect_declarations(subject.task)  # unlabelled: the same root cause as everywhere else
    for check in DATA_CHECKS:
        with where(f"{label} ({check.__name__})"):
            check(subject)


def check_default_dataset(subject: TaskSubject) -> None:
    """The check case is a few hand-made examples; users run the default dataset. Split
    leaks, wrong shapes and a hard-coded `input_size` live in the real data's code path."""
    dataset = subject.task.default_dataset
    _data_checks(subject.offline(dataset, {}), f"the default dataset '{dataset}'")


def check_choices(subject: TaskSubject) -> None:
    """Every value of every `choices` parameter builds different data or modules (pooling,
    feature sets), so each is prepared on the default dataset and checked like the default.
    A value the default dataset refuses with a one-line error is left out, as a user would
    see it refused."""
    task, dataset = subject.task, subject.task.default_dataset
    variants = [{p.name: value} for p in task.params if p.choices
                for value in p.choices if value != p.default]
    if not variants:
        raise CheckSkipped(f"task '{task.name}' declares no parameter with choices")
    refused = []
    for params in variants:
        label = ", ".join(f"{k}={v!r}" for k, v in params.items())
        try:
            variant = subject.offline(dataset, params)
        except CheckSkipped as skipped:
            refused.append(str(skipped))
            continue
        _data_checks(variant, f"'{dataset}' with {label}")
    if len(refused) == len(variants):
        raise CheckSkipped("; ".join(refused))


def check_learns(subject: TaskSubject) -> None:
    """Optional (`learn=True`): the random model must overfit the first two training
    batches (the check case's, normally). A loss that cannot fall points to a head whose
    outputs do not reach the loss, targets misaligned with inputs, or a detached graph."""
    model = subject.model().train()
    batches = list(subject.data.batches("train", subject.batch_size))[:2]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)

    def total() -> torch.Tensor:
        return sum(subject.data.loss(outputs_of(model, batch), batch) for batch in batches)

    start = float(total().detach())
    for _ in range(LEARN_STEPS):
        optimizer.zero_grad()
        total().backward()
        optimizer.step()
    end = float(total().detach())
    expect(end < start / 2, f"the training loss on 2 batches to halve in {LEARN_STEPS} Adam "
           "steps", f"{start:.4g} -> {end:.4g}")


TASK_CHECKS: tuple[Callable[[TaskSubject], None], ...] = (
    check_declarations,
    check_splits_nonempty,
    check_batches,
    check_splits_disjoint,
    check_input_size,
    check_loss_finite,
    *composing.COMPOSING_CHECKS,
    check_metrics_declared,
    check_metrics_case,
    check_generate,
    check_artifacts,
    check_default_dataset,
    check_choices,
    check_learns,
)


def task_checks(task: str | Task, data: TaskData | Callable[[], TaskData] | None = None, *,
                dataset: str | None = None, data_dir: str | Path | None = None,
                params: Mapping[str, Any] | None = None,
                skip: Mapping[str, str] | None = None, real_data: bool = True,
                learn: bool = False, max_overlap: float = 0.0) -> list[Check]:
    """The checks for `task`, sharing one lazily prepared subject. `real_data=False` skips
    the two checks that prepare real datasets; `learn=True` runs `check_learns`;
    `max_overlap` is the share of valid and test examples allowed to repeat an earlier
    split's content (0: none)."""
    subject = TaskSubject(task, data, dataset, data_dir, params, max_overlap)

    def bind(check: Callable[[TaskSubject], None]) -> Check:
        return Check(check.__name__, lambda: check(subject))

    off = {} if real_data else {name: "real_data=False" for name in (
        "check_default_dataset", "check_choices")}
    if not learn:
        off["check_learns"] = "optional: pass learn=True to run it"
    return with_skips([bind(check) for check in TASK_CHECKS], skip, off)
