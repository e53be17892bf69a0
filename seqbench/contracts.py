"""The two plugin contracts: what a cell and what a task must provide.

These are the only types a plugin needs from seqbench (re-exported by `seqbench`). The
core never names a concrete cell or task; it talks to plugins only through these shapes,
which is what lets a third-party cell enter a comparison on equal terms with LSTM.
Torch is imported lazily by implementations so that `seqbench list` and `--help` stay fast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from seqbench.errors import PluginContractError, SeqbenchError
from seqbench.params import Param
from seqbench.plugin_api import PLUGIN_API, warn_api_1_0_task_modules

if TYPE_CHECKING:
    import torch
    from torch import nn

Direction = Literal["minimize", "maximize"]
#: `cells(input_size)` builds one fresh stack of the run's cell (its searched width, depth,
#: dropout and extras) reading `input_size` features; what a task that composes cells gets.
CellFactory = Callable[[int], "nn.Module"]
#: The kinds of sequence model a cell may declare (`Cell.family`); reports group by them, so
#: a reader sees at once whether a recurrent cell was beaten by a convolution or attention.
FAMILIES = ("recurrent", "linear-recurrent", "convolution", "attention", "state-space")


@dataclass(frozen=True)
class Cell:
    """A recurrent cell plugin.

    `build(input_size, hidden_size, num_layers, dropout, **extra)` returns an `nn.Module`
    whose `forward(x, state=None)` maps `x[B, T, input_size]` to `(y[B, T, hidden_size],
    state)`; passing the returned state into the next call must continue the sequence.
    `extra` holds the values of `params`, already validated.

    `family` is one of `FAMILIES`: "recurrent" (a nonlinear recurrence, LSTM),
    "linear-recurrent" (a recurrence linear in the state, so a parallel scan can train it),
    "convolution", "attention" or "state-space".

    The state's layout is the cell's own: a tensor or any nesting of tuples, lists and dicts
    of tensors, batch in whichever dimension (nn.LSTM's `[layers, B, H]`, a step cell's
    `[B, H, K]` per layer). The core never indexes into it: when a task carries state across
    windows, the core detaches it and passes it back only to a batch of the same size.
    `plugin_api` is the contract version the cell was written for (`seqbench.PLUGIN_API`);
    the registry refuses a cell that targets one this seqbench does not provide.
    """

    name: str
    summary: str
    build: Callable[..., nn.Module]
    params: tuple[Param, ...] = ()
    family: str = "recurrent"
    plugin_api: str | None = None


@dataclass
class Batch:
    """One ready-to-use batch. Tasks put their tensors here; the model moves it to the device.

    `mask[B, T]` is True on real (non-padding) steps when sequences have different lengths.
    `extra` carries anything else a task's loss needs (e.g. class labels).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: Any) -> Batch:
        """This batch on `device` (tensors in `extra` move too; other values stay)."""
        def move(value: Any) -> Any:
            return value.to(device, non_blocking=True) if hasattr(value, "to") else value

        return Batch(
            inputs=move(self.inputs),
            targets=move(self.targets),
            mask=None if self.mask is None else move(self.mask),
            extra={key: move(value) for key, value in self.extra.items()},
        )


@dataclass(frozen=True)
class DataContext:
    """Where a task may read canonical files and keep its caches, plus a progress hook."""

    data_dir: Path
    cache_dir: Path
    progress: Callable[[str, Iterable[Any], int | None], Iterable[Any]] = (
        lambda description, items, total=None: items
    )


class TaskData(ABC):
    """A task bound to one dataset: the data, the task's modules and its loss and metrics.

    The core builds `encoder -> cell -> head`, feeds it `Batch`es and asks this object for
    the loss and the metric statistics. Statistics are *sums* (e.g. total NLL, frame count)
    so that metrics are exact over a whole split, never an average of batch averages.
    """

    #: Width of the encoder's output, i.e. the cell's `input_size`.
    input_size: int

    def __new__(cls, *args: Any, **kwargs: Any) -> TaskData:
        # Python's own refusal is a TypeError that reaches the user as a traceback from deep
        # inside `prepare()`; a plugin written for another contract deserves one line.
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        if missing:
            raise PluginContractError(
                f"{cls.__module__}.{cls.__qualname__} cannot be used: it lacks "
                f"{', '.join(name + '()' for name in missing)}, which the TaskData contract "
                f"requires (seqbench plugin API {PLUGIN_API}; see docs/plugins.md, 'Changes "
                "for plugin authors').")
        return super().__new__(cls)

    @abstractmethod
    def batches(self, split: str, batch_size: int, seed: int | None = None) -> Iterable[Batch]:
        """Iterate over `split` ("train", "valid", "test"). With a seed, shuffle reproducibly.

        The same seed gives the same order, another seed another one; the global torch,
        numpy and `random` generators are neither read nor reseeded (use
        `np.random.default_rng(seed)` or a `torch.Generator`). Each example's targets stay
        with its inputs whatever the batch size and order.
        """

    @abstractmethod
    def num_batches(self, split: str, batch_size: int) -> int:
        """How many batches `batches(split, batch_size)` yields."""

    def modules(self, hidden_size: int, params: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
        """`(encoder, head)`: the encoder maps `Batch.inputs` to features `[B, T, input_size]`,
        the head maps the cell's output `[B, T, hidden_size]` to the task's predictions.

        `params` holds the task's own hyperparameters (every `Task.params` name, validated,
        defaults filled in), the same mapping `prepare()` received. One hook builds both so
        that modules sharing weights (a language model's tied input and output embeddings)
        are wired in one place, whatever order the core calls in and with no state left on
        the data object between two calls; it is also where a head starts from the training
        data's prior (its bias set to the class log-priors). Every task implements it, except
        one that composes cells (`Task.composes_cells`), which implements `network`.

        The default serves a `TaskData` written for plugin API 1.0, which has `encoder(params)`
        and `head(hidden_size, params)` instead, with a `DeprecationWarning`.
        """
        encoder, head = getattr(self, "encoder", None), getattr(self, "head", None)
        if callable(encoder) and callable(head):
            warn_api_1_0_task_modules(type(self).__name__)
            return encoder(params), head(hidden_size, params)
        raise PluginContractError(
            f"{type(self).__name__} implements neither modules(hidden_size, params) -> "
            "(encoder, head) nor, for a task that composes cells, network().")

    def network(self, cells: CellFactory, hidden_size: int,
                params: Mapping[str, Any]) -> nn.Module:
        """The whole model of a task that composes cells (`Task.composes_cells = True`).

        An encoder-decoder with attention needs two recurrent stacks, a bidirectional encoder
        two more; `encoder -> cell -> head` cannot say that. Such a task builds its model
        here, calling `cells(input_size)` once per recurrent stack it needs (each call draws
        fresh weights of the run's cell, with the searched hyperparameters), so every cell
        is compared inside the same model and `--param-budget` counts the whole of it. The
        module's `forward(batch)` returns the outputs that `loss`, `statistics` and
        `item_scores` receive; no state is carried across batches. Inputs and targets may
        differ in length (a sentence and its translation): `Batch.mask` then marks the real
        steps of the sequence the outputs follow, the targets' for a decoder (one output
        per target position), the inputs' for CTC (one output per input step); a
        decoder's teacher-forced inputs come from `Batch.targets` (shifted), so the kit can
        check that no output sees its target. Padding is padded steps' values as the task
        makes them (a PAD id, zeros): the kit adds more of them to check it is ignored.
        """
        raise PluginContractError(f"{type(self).__name__} declares that its task composes "
                                  "cells but does not implement network().")

    @abstractmethod
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Scalar (0-d) training loss for one batch, averaged over real steps only: with
        `batch.mask`, padded steps count neither in the sum nor in the divisor."""

    @abstractmethod
    def statistics(self, outputs: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Additive statistics of one batch (sums, counts): 0-d tensors, or fixed-size
        tensors summed elementwise (e.g. a flattened confusion matrix)."""

    @abstractmethod
    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        """Turn statistics summed over a split into the task's metrics (unprefixed names).

        `totals` maps each `statistics` key to plain Python numbers, never tensors: a 0-d
        statistic arrives as a `float`, a larger one as a flat `list` of floats
        (`plain_totals` does that conversion). Return `{name: float}`; a 0-d tensor or numpy
        number is accepted too, and the core converts it with `float()`.
        """

    def split_sizes(self) -> dict[str, int]:
        """Number of examples (sequences) per split, for summaries."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Facts about the loaded data for `seqbench data`, beyond `split_sizes`.

        A dict with any of these keys (others are ignored): `"lengths"`: `{split: [int,
        ...]}`, every item's length; `"balance"`: `{split: {class or key name: int count}}`;
        `"notes"`: `[str, ...]`, one line each (files skipped, notes out of range, how the
        split was made); `"cache"`: `str`, the preprocessed file. A practitioner checks these
        before spending hours of training on data that was read wrongly.
        """
        return {}

    def baselines(self) -> dict[str, dict[str, float]]:
        """Test metrics of simple reference predictors, keyed by baseline name.

        Computed by the task on exactly the test examples the model is scored on and written
        beside the model's metrics, so a cell that loses to "repeat the last value" is seen
        losing. Names of the inner metrics match `metrics` (unprefixed). A name starting
        with "oracle" marks a reference given what the models are not (ASR's true digit
        boundaries): reports never recommend it in a cell's place."""
        return {}

    def fold(self, index: int, folds: int) -> TaskData:
        """This data with training and validation re-split into fold `index` of `folds`.

        Small validation sets select noisily (one 36-sequence split picks a winner on a
        lucky epoch), so a task whose datasets are small declares `Task.selection_folds`
        and implements this: stratified k-fold for classification, rolling origin for
        forecasting. The test split never changes. The default refuses, naming the task.
        """
        raise SeqbenchError(f"{type(self).__name__} has no k-fold validation (folds={folds}); "
                            "use folds=1.")

    def refit(self) -> TaskData:
        """This data with the validation items trained on too (the test split never changes).

        A configuration chosen by k-fold validation is then trained on the whole training
        set for the epochs the folds chose, as scikit-learn's `refit` and the UCR/UEA
        protocol do, instead of on a fraction with a small split left out to stop it. The
        validation split stays, for the record only: its items are now seen in training.
        The default refuses with one clear line, as a task that cannot refit should.
        """
        raise SeqbenchError(f"{type(self).__name__} cannot train on its validation items "
                            "(refit); use refit=false.")

    def item_scores(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor,
                                                                         torch.Tensor] | None:
        """Per-item `(value, weight)` of the primary metric, or None if not itemisable.

        Both are 1-D float tensors of shape `[B]`, one entry per row of `batch.inputs` (a
        test item: a sequence, a forecast window, an evaluation window of a stream), with
        `outputs` as `loss` receives them. The primary test metric must equal sum(value) /
        sum(weight) over the test split (accuracy: correct 0/1 and 1; NLL per frame: the
        item's NLL sum and its frames), and the items, in order, must not depend on the
        batch size (each cell is tested at its own tuned one). Every cell is scored on the
        same items, so reports compare cells pairwise item by item (McNemar, paired
        permutation), which is far more sensitive than comparing seed means.
        """
        return None

    def artifacts(self, model: nn.Module, run_dir: Path) -> list[Path]:
        """Write task-specific files (plots, confusion matrices) for the best model; return them.

        Called once after the test evaluation with the restored best model in eval mode.
        """
        return []


def plain_totals(totals: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Summed statistics as `TaskData.metrics` receives them: 0-d -> float, else flat floats.

    One function so that training and the conformance kit hand tasks the same values.
    """
    return {key: float(value) if value.numel() == 1 else value.double().flatten().tolist()
            for key, value in totals.items()}


@dataclass(frozen=True)
class CheckCase:
    """A tiny, hand-checkable instance of a task, for the conformance kit (`seqbench.testing`).

    `data` is a few examples built in memory (no files, no network), so the kit runs offline
    in seconds. Feeding `predict(batch)` (head outputs, as the model would produce them) for
    every batch of `split` through `statistics` and `metrics` must give `expected` (a subset
    of the metrics suffices), which catches wrong sums, averages of batch averages and
    off-by-one masks that a finite loss does not. `dataset` names the dataset the tiny data
    stands in for (it decides the primary metric); None means the task's default.
    """

    data: TaskData
    predict: Callable[[Batch], torch.Tensor]
    expected: Mapping[str, float]
    split: str = "test"
    batch_size: int = 2
    dataset: str | None = None


class Task(ABC):
    """A task plugin: declarations as class attributes, data through `prepare`.

    `defaults` overrides core hyperparameter defaults (epochs, lr, hidden_size, ...) for this
    task; `params` declares the task's own hyperparameters. `primary_metric` names an entry of
    `TaskData.metrics` (e.g. "nll"); it is logged as `val_<name>` and `test_<name>`.
    `carry_state=True` asks the trainer to carry the cell state across consecutive batches
    (truncated BPTT over one long stream), detached between them.
    """

    name: str
    summary: str
    datasets: Mapping[str, str]
    default_dataset: str
    primary_metric: str
    direction: Direction
    params: tuple[Param, ...] = ()
    defaults: Mapping[str, Any] = {}
    carry_state: bool = False
    #: The task builds its own model around cells (`TaskData.network`) instead of
    #: `encoder -> cell -> head` (`TaskData.modules`): translation, bidirectional encoders.
    composes_cells: bool = False
    #: `(metric, direction)` that early stopping, the best-epoch choice and sweeps optimise on
    #: the validation split, when it should differ from the reported metric: accuracy on a
    #: small validation set saturates at 1.0 and stops telling models apart; NLL does not.
    select_by: tuple[str, Direction] | None = None
    #: Per-dataset primary metrics where the literature reports different ones (same direction).
    primary_metrics: Mapping[str, str] = {}
    #: Core-hyperparameter defaults per dataset, over `defaults` (ETTh1 is not airline).
    dataset_defaults: Mapping[str, Mapping[str, Any]] = {}
    #: Search ranges of core hyperparameters (`{"layers": (1, 2)}`), and per dataset.
    search: Mapping[str, tuple[Any, ...]] = {}
    dataset_search: Mapping[str, Mapping[str, tuple[Any, ...]]] = {}
    #: Folds a sweep validates each trial on, per dataset (absent = the dataset's own split).
    #: Needs `TaskData.fold`; final runs always train on the dataset's own split.
    selection_folds: Mapping[str, int] = {}
    #: Splits drawn from the training data stratified by class (sequence classification,
    #: e.g. `("valid",)`): the kit checks that their class shares match training's.
    stratified: tuple[str, ...] = ()
    #: The contract version the task was written for (`seqbench.PLUGIN_API`); the registry
    #: refuses a task that targets one this seqbench does not provide.
    plugin_api: str | None = None

    def defaults_for(self, dataset: str | None) -> dict[str, Any]:
        """Core-hyperparameter defaults for `dataset`."""
        return {**self.defaults, **self.dataset_defaults.get(dataset or "", {})}

    def search_for(self, dataset: str | None) -> dict[str, tuple[Any, ...]]:
        """Search-range overrides of core hyperparameters for `dataset`."""
        return {**self.search, **self.dataset_search.get(dataset or "", {})}

    def primary(self, dataset: str) -> str:
        """The reported metric (unprefixed) for `dataset`."""
        return self.primary_metrics.get(dataset, self.primary_metric)

    def selection(self, dataset: str) -> tuple[str, Direction]:
        """The validation metric (unprefixed) and direction used for model selection."""
        return self.select_by or (self.primary(dataset), self.direction)

    @abstractmethod
    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]) -> TaskData:
        """Load (or build and cache) `dataset` and return it bound to this task."""

    #: Optional: `generate(model, data, out_dir, options) -> list[Path]` turns a trained model
    #: into something a person can use (MIDI, text, a forecast) and returns the files written.
    #: A task defines it as an ordinary method; None means the task has nothing to generate,
    #: which `seqbench generate` reports before loading any model.
    generate: Callable[[Any, TaskData, Path, Mapping[str, Any]], list[Path]] | None = None

    #: Options `generate` accepts, declared like hyperparameters.
    generate_params: tuple[Param, ...] = ()

    #: Optional: `forecast(model, data, options) -> pandas.DataFrame` predicts past the end of
    #: the data (`Run.forecast(n)`; `options`: `generate_params` values with `horizon=n`).
    forecast: Callable[[Any, TaskData, Mapping[str, Any]], Any] | None = None

    def restore(self, dataset: str, params: Mapping[str, Any], run_dir: Path) -> TaskData | None:
        """Optional: the data `generate` needs, rebuilt from what the run folder holds (e.g.
        the tokenizer of a user's corpus), so a trained model is usable without its
        dataset. None (the default) means the dataset is loaded as for training."""
        return None

    def test_item_span(self, dataset: str, params: Mapping[str, Any]) -> int:
        """How many consecutive test items (in `TaskData.item_scores` order) may share data.

        1 (the default): the items are independent draws (recordings, pieces, series).
        Windows that slide over one series share observations; a report then resamples
        blocks of this many consecutive items, so that overlap is not counted as evidence.
        Answered from the dataset name and the task's parameters alone (no data loaded), so
        a report can ask it of runs recorded before this hook existed.
        """
        return 1

    def check_case(self) -> CheckCase | None:
        """A tiny in-memory instance with known metrics, for `seqbench.testing.check_task`.

        Optional, but without it the kit cannot check the metrics and needs real data for
        its other checks. None (the default) means the task supplies no case.
        """
        return None
