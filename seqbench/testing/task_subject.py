"""The task under test, its data and a probe model: what every task check shares.

The checks run on a tiny dataset so that they are fast and offline: the task's own
`Task.check_case()` data by default, or data the caller passes, and the task's real
default dataset prepared offline where a check is about preparing. They probe the task with
a random model built exactly as training builds it (`seqbench.model.SequenceModel`: the
task's encoder, a one-layer torch GRU with 8 units standing in for a cell, the task's
head; or the task's own network around such GRUs), so "works with the kit" means "works in
`seqbench run`".
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from seqbench import registry
from seqbench.config import build_spec
from seqbench.contracts import (
    Batch,
    Cell,
    CheckCase,
    DataContext,
    PluginContractError,
    Task,
    TaskData,
    plain_totals,
)
from seqbench.declarations import contract_problems, task_problems
from seqbench.errors import SeqbenchError
from seqbench.params import resolve
from seqbench.testing.kit import CheckSkipped, expect

SPLITS = ("train", "valid", "test")
#: Batch size for probing data that did not come from the task's check case.
BATCH_SIZE = 8
PROBE_HIDDEN = 8


def _probe_cell(input_size: int, hidden_size: int, num_layers: int, dropout: float):
    return torch.nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout,
                        batch_first=True)


#: The stand-in cell: a plain torch GRU, which satisfies the cell contract as it is.
PROBE_CELL = Cell(name="probe", summary="torch GRU used by seqbench.testing", build=_probe_cell)

TaskDataLike = TaskData | Callable[[], TaskData] | None


def expect_declarations(task: Task) -> None:
    problems = contract_problems(task) + task_problems(task)
    expect(not problems, "a well-formed task declaration (what the registry checks at load)",
           "; ".join(problems))


class TaskSubject:
    """The task under test and its tiny data, resolved once, on first use by any check.

    Lazy so that building the checks (e.g. at pytest collection) loads nothing, and shared
    so that the data is prepared once for all checks.
    """

    def __init__(self, task: str | Task, data: TaskDataLike, dataset: str | None,
                 data_dir: str | Path | None, params: Mapping[str, Any] | None,
                 max_overlap: float = 0.0) -> None:
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
        return self.resolved(self._params)

    def resolved(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return resolve(self.task.params, given, f"task '{self.task.name}'")

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

    @functools.cached_property
    def real(self) -> TaskSubject:
        """The task's default dataset, prepared offline with the subject's parameters."""
        return self.offline(self.task.default_dataset, {})

    def context(self, cache_dir: Path | None = None) -> DataContext:
        from seqbench.datafiles import resolve_cache_dir, resolve_data_dir

        return DataContext(data_dir=resolve_data_dir(self._data_dir),
                           cache_dir=cache_dir or resolve_cache_dir())

    def prepare_offline(self, dataset: str, params: Mapping[str, Any],
                        cache_dir: Path | None = None) -> TaskData:
        """`task.prepare(dataset, ..., params)` (resolved task parameters) as `seqbench run`
        calls it but with downloads off; `CheckSkipped` (saying why) when the files are not
        here. A `SeqbenchError` is the one-line error a user would see, so the data is "not
        available" rather than broken; a plugin that breaks the contract is a failure.
        `cache_dir` replaces the cache folder (an empty one prepares from scratch)."""
        from seqbench.datafiles import OFFLINE_ENV

        saved = os.environ.get(OFFLINE_ENV)
        os.environ[OFFLINE_ENV] = "1"
        try:
            return self.task.prepare(dataset, self.context(cache_dir), params)
        except PluginContractError:
            raise
        except SeqbenchError as exc:
            defaults = self.resolved({})
            changed = {k: v for k, v in params.items() if v != defaults.get(k)}
            raise CheckSkipped(f"dataset '{dataset}' with {changed or 'default settings'} is "
                               f"not available offline here: {exc}") from exc
        finally:
            if saved is None:
                del os.environ[OFFLINE_ENV]
            else:
                os.environ[OFFLINE_ENV] = saved

    def offline(self, dataset: str, params: Mapping[str, Any]) -> TaskSubject:
        """This task on the real `dataset` with `params` added (see `prepare_offline`)."""
        given = {**self._params, **params}
        return TaskSubject(self.task, self.prepare_offline(dataset, self.resolved(given)),
                           dataset, self._data_dir, given, self.max_overlap)

    @property
    def batch_size(self) -> int:
        return self.case.batch_size if self.from_case else BATCH_SIZE

    def first_batch(self, split: str) -> Batch:
        batch = next(iter(self.data.batches(split, self.batch_size)), None)
        expect(batch is not None, f"at least one '{split}' batch", "none")
        return batch

    def model(self, data: TaskData | None = None, params: Mapping[str, Any] | None = None,
              hidden_size: int = PROBE_HIDDEN):
        """A freshly initialised probe model (seed 0) as training builds it, on this
        subject's data (or `data`, prepared with task parameters `params`), with
        `hidden_size` units (a task that composes cells builds its network around such
        GRU stacks)."""
        from seqbench.model import SequenceModel  # Lightning: imported by task checks only

        expect_declarations(self.task)
        given = self._params if params is None else params
        spec = build_spec(self.task, PROBE_CELL, self.dataset,
                          {"hidden_size": hidden_size, "layers": 1,
                           **{f"task.{key}": value for key, value in given.items()}})
        torch.manual_seed(0)
        return SequenceModel(self.task, self.data if data is None else data, PROBE_CELL, spec)


def task_label(task: str | Task) -> str:
    return task if isinstance(task, str) else task.name


def outputs_of(model, batch: Batch) -> Any:
    """The probe model's outputs for `batch`, as `loss` receives them (no carried state)."""
    return model(batch if model.composed else batch.inputs)[0]


def split_metrics(data: TaskData, split: str, batch_size: int,
                  outputs: Callable[[Batch], Any]) -> dict[str, float]:
    """Statistics summed over `split`, turned into metrics, exactly as evaluation does."""
    totals: dict[str, Any] = {}
    for batch in data.batches(split, batch_size):
        for key, value in data.statistics(outputs(batch), batch).items():
            value = value.detach()
            totals[key] = totals[key] + value if key in totals else value
    return data.metrics(plain_totals(totals))


def _real_steps(value: torch.Tensor, row_mask: torch.Tensor | None) -> torch.Tensor:
    """One row of a per-row tensor without its padding: the steps `row_mask` marks real
    where it has the mask's length, else without trailing all-zero steps (a sequence the
    mask does not cover, padded with zeros or a PAD id 0: CTC labels, a source sentence),
    so the same example reads the same in any batch."""
    if row_mask is not None and value.shape[:1] == row_mask.shape:
        return value[row_mask]
    if value.dim() == 0 or len(value) == 0:
        return value
    kept = value.reshape(len(value), -1).ne(0).any(1).nonzero()
    return value[: int(kept[-1]) + 1] if len(kept) else value[:0]


def row_hashes(tensors: list[torch.Tensor], rows: int, mask: torch.Tensor | None) -> list[str]:
    """One content hash per batch row: its real steps of every per-row tensor given."""
    hashes = []
    for row in range(rows):
        digest = hashlib.sha256()
        for tensor in tensors:
            if tensor.dim() == 0 or tensor.shape[0] != rows:
                continue
            value = _real_steps(tensor[row], None if mask is None else mask[row])
            digest.update(str((tuple(value.shape), value.dtype)).encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        hashes.append(digest.hexdigest())
    return hashes


def example_hashes(batch: Batch) -> list[str]:
    """One content hash per example (batch row): inputs, targets and per-row extras."""
    tensors = [batch.inputs, batch.targets, *(v for v in batch.extra.values()
                                              if isinstance(v, torch.Tensor))]
    return row_hashes(tensors, batch.inputs.shape[0], batch.mask)
