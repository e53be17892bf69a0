"""The run specification: one validated, serialisable description of a training run.

A run is a pure function of its spec (plus data and seed), so the spec is written next to
the results and any row of any table can be re-run from it. Everything that can vary is a
declared `Param`: the core's training hyperparameters here, the cell's and the task's own
extras in their plugins. `build_spec` is the boundary where all of it is validated, before
any data is loaded or any model built.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import InitVar, asdict, dataclass, field
from types import MappingProxyType
from typing import Any

from seqbench import registry
from seqbench.contracts import Cell, Task
from seqbench.errors import SeqbenchError, unknown_name
from seqbench.params import Param, check_seed, check_threads, resolve

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
#: What a sweep explores by default. AdamW equals Adam while weight decay is not tuned, and
#: SGD needs learning rates two orders of magnitude above the adaptive methods', so it
#: only enters a sweep when the user fixes it (`--set optimizer=sgd`), with its own range.
SEARCHED_OPTIMIZERS = ("adam", "rmsprop")
#: Learning-rate ranges in which each optimizer trains recurrent nets (with clipping).
LR_SEARCH = {"adam": (1e-4, 1e-2), "adamw": (1e-4, 1e-2), "rmsprop": (1e-4, 3e-3),
             "sgd": (0.03, 30.0)}
DEVICES = ("auto", "cpu", "cuda")

#: Training hyperparameters every run has. Tasks may override the defaults (`Task.defaults`).
CORE_PARAMS: tuple[Param, ...] = (
    Param("epochs", int, 20, "maximum training epochs", low=1, high=100_000, tune=False),
    Param("hidden_size", int, 128, "units per recurrent layer", low=1, high=16_384,
          log=True, search=(32, 512)),
    Param("layers", int, 1, "stacked recurrent layers", low=1, high=16, search=(1, 3)),
    Param("dropout", float, 0.0, "dropout between stacked layers", low=0.0, high=0.95,
          search=(0.0, 0.5)),
    Param("lr", float, 1e-3, "learning rate", low=1e-8, high=100.0, log=True,
          search=(1e-4, 1e-2), search_by=("optimizer", LR_SEARCH)),
    Param("batch_size", int, 32, "sequences per batch", low=1, high=1_000_000, log=True,
          search=(8, 128)),
    Param("optimizer", str, "adam", "optimizer", choices=OPTIMIZERS,
          search=SEARCHED_OPTIMIZERS),
    Param("weight_decay", float, 0.0, "L2 penalty (decoupled for adamw)", low=0.0, high=1.0,
          tune=False),
    Param("clip", float, 1.0, "gradient-norm clipping threshold (0 = off); on by default "
          "because recurrent nets explode", low=0.0, high=10_000.0, log=True, search=(0.1, 10.0)),
    Param("lr_decay", float, 1.0, "multiply the lr by this each epoch after the first "
          "lr_decay_start epochs (Zaremba et al. 2014: 0.5 after 4; 1 = constant)", low=0.01,
          high=1.0, tune=False),
    Param("lr_decay_start", int, 0, "epochs trained at the full lr before lr_decay applies",
          low=0, high=100_000, tune=False),
    Param("patience", int, 5, "early-stopping patience in epochs (0 = off)", low=0,
          high=100_000, tune=False),
    Param("min_epochs", int, 0, "neither early stopping nor pruning stops a run before this "
          "many epochs (a slow starter may sit on a plateau first)", low=0, high=100_000,
          tune=False),
    Param("min_steps", int, 0, "likewise in optimisation steps (for data sets with one or "
          "two batches per epoch)", low=0, high=100_000_000, tune=False),
    Param("folds", int, 1, "k-fold (or rolling-origin) validation: the task re-splits its "
          "training data into this many folds (1 = the dataset's own validation split)",
          low=1, high=100, tune=False),
    Param("fold", int, 0, "which fold this run validates on (0-based, below folds)", low=0,
          high=99, tune=False),
    Param("refit", bool, False, "train on the training and validation data together for "
          "exactly `epochs` epochs and keep the last weights (no early stopping): how a sweep's "
          "finals train a configuration chosen by k-fold validation", tune=False),
)


#: Proof that a `RunSpec` is being made by `build_spec`; see `RunSpec.__post_init__`.
_VALIDATED = object()


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run's result (but not where files live).

    Frozen, and made only by `build_spec` (and `from_dict`, which goes through it): calling
    `RunSpec(...)` directly raises, so every spec that reaches training has had its names
    and values checked, whether it came from the CLI, the Python API or a `--spec` file.
    The three parameter groups are read-only mappings; `with_settings` makes a changed copy.
    """

    task: str
    dataset: str
    cell: str
    seed: int = 0
    device: str = "auto"
    hparams: Mapping[str, Any] = field(default_factory=dict)
    cell_params: Mapping[str, Any] = field(default_factory=dict)
    task_params: Mapping[str, Any] = field(default_factory=dict)
    #: CPU threads the run trains on (None until decided: `seqbench.threads.decide`). Part
    #: of the result, so recorded and re-used; not of a configuration's identity (a sweep's
    #: stopped final resumes on another host), so left out of equality; never searched.
    threads: int | None = field(default=None, compare=False)
    _token: InitVar[object] = None

    def __post_init__(self, _token: object) -> None:
        if _token is not _VALIDATED:
            raise TypeError("a RunSpec is made by seqbench.config.build_spec (or "
                            "RunSpec.from_dict), which validates it; not by RunSpec(...)")
        for name in ("hparams", "cell_params", "task_params"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def __repr__(self) -> str:
        return f"RunSpec({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as plain data (read-only mappings do not pickle); it was validated already."""
        return (_trusted, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "dataset": self.dataset, "cell": self.cell,
                "seed": self.seed, "device": self.device, "hparams": dict(self.hparams),
                "cell_params": dict(self.cell_params), "task_params": dict(self.task_params),
                "threads": self.threads}

    def settings(self) -> dict[str, Any]:
        """Every hyperparameter as one `key=value` mapping that `build_spec` routes back."""
        return {**self.hparams,
                **{f"cell.{k}": v for k, v in self.cell_params.items()},
                **{f"task.{k}": v for k, v in self.task_params.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """Re-validate a stored spec (e.g. a run record's) against the installed plugins."""
        settings = {**data.get("hparams", {}),
                    **{f"cell.{k}": v for k, v in data.get("cell_params", {}).items()},
                    **{f"task.{k}": v for k, v in data.get("task_params", {}).items()}}
        return build_spec(data["task"], data["cell"], data.get("dataset"), settings,
                          seed=data.get("seed", 0), device=data.get("device", "auto"),
                          threads=data.get("threads"))

    def with_settings(self, settings: Mapping[str, Any]) -> RunSpec:
        """This spec with some hyperparameters changed, validated like any other."""
        return build_spec(self.task, self.cell, self.dataset, {**self.settings(), **settings},
                          seed=self.seed, device=self.device, threads=self.threads)

    def with_threads(self, threads: int) -> RunSpec:
        """This spec with its thread count decided (`seqbench.threads.decide`)."""
        return _trusted({**self.to_dict(), "threads": check_threads(threads)})

    def command(self) -> str:
        """The `seqbench run` command line that reproduces this spec, quoted for a POSIX
        shell (a path with spaces in a setting stays one argument)."""
        parts = ["seqbench", "run", "--task", self.task, "--dataset", self.dataset,
                 "--cell", self.cell, "--seed", str(self.seed)]
        parts += ["--threads", str(self.threads)] if self.threads is not None else []
        for key, value in self.settings().items():
            parts += ["--set", f"{key}={value}"]
        return shlex.join(parts)


def _trusted(data: Mapping[str, Any]) -> RunSpec:
    """Rebuild a pickled spec without looking plugins up again (a worker process may not
    have an in-process plugin registered; `seqbench.api` reports that case itself)."""
    return RunSpec(**data, _token=_VALIDATED)


def core_params_for(task: Task, dataset: str | None = None) -> tuple[Param, ...]:
    """The core parameters with the task's defaults and search ranges for `dataset` applied.

    A task knows what depth, width or batch size makes sense for its data (13 airline
    windows make a batch of 32 one update per epoch), so it may narrow the core ranges.
    """
    names = {p.name for p in CORE_PARAMS}
    defaults = task.defaults_for(dataset)
    search = task.search_for(dataset)
    for key in [*defaults, *search]:
        if key not in names:
            raise unknown_name(f"core hyperparameter (in task '{task.name}')", key, names)
    return tuple(
        Param(**{**asdict(p),
                 **({"default": p.coerce(defaults[p.name])} if p.name in defaults else {}),
                 **({"search": tuple(search[p.name])} if p.name in search else {})})
        for p in CORE_PARAMS
    )


def _route(
    settings: Mapping[str, Any], groups: Mapping[str, tuple[Param, ...]]
) -> dict[str, dict[str, Any]]:
    """Send each `key=value` to the group that declares `key` (`cell.`/`task.` to force one)."""
    routed: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in settings.items():
        prefix, _, bare = key.rpartition(".")
        if not bare:
            raise SeqbenchError(f"'{key}={value}' names no hyperparameter; write NAME=VALUE.")
        if prefix:
            forcible = [g for g in groups if g != "core"]  # core names are never ambiguous
            if prefix not in forcible:
                raise unknown_name("setting prefix", prefix, forcible)
            routed[prefix][bare] = value
            continue
        owners = [g for g, params in groups.items() if any(p.name == key for p in params)]
        if not owners:
            every = {p.name for params in groups.values() for p in params}
            raise unknown_name("hyperparameter", key, every)
        if len(owners) > 1:
            raise SeqbenchError(f"'{key}' is declared by {' and '.join(owners)}; "
                                f"write {owners[-1]}.{key}=... to choose.")
        routed[owners[0]][key] = value
    return routed


def build_spec(
    task: str | Task,
    cell: str | Cell,
    dataset: str | None = None,
    settings: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
) -> RunSpec:
    """Validate names and every hyperparameter; return a fully resolved `RunSpec`.

    `task` and `cell` are installed plugin names, or plugin objects (validated against their
    own declarations; the spec records their names, so training needs them registered).
    """
    task_plugin = task if isinstance(task, Task) else registry.get_task(task)
    cell_plugin = cell if isinstance(cell, Cell) else registry.get_cell(cell)
    dataset = dataset or task_plugin.default_dataset
    if dataset not in task_plugin.datasets:
        raise unknown_name("dataset", dataset, task_plugin.datasets,
                           owner=f"task '{task_plugin.name}'")
    if device not in DEVICES:
        raise unknown_name("device", device, DEVICES)
    groups = {
        "core": core_params_for(task_plugin, dataset),
        "cell": cell_plugin.params,
        "task": task_plugin.params,
    }
    routed = _route(settings or {}, groups)
    hparams = resolve(groups["core"], routed["core"], "training")
    if hparams["refit"] and hparams["folds"] > 1:
        raise SeqbenchError("refit=true trains on every training fold at once; it cannot be "
                            f"combined with folds={hparams['folds']}.")
    if hparams["fold"] >= hparams["folds"]:
        raise SeqbenchError(f"fold={hparams['fold']} must be below folds={hparams['folds']} "
                            "(folds are numbered from 0).")
    return RunSpec(
        task=task_plugin.name,
        dataset=dataset,
        cell=cell_plugin.name,
        seed=check_seed(seed),
        device=device,
        hparams=hparams,
        cell_params=resolve(groups["cell"], routed["cell"], f"cell '{cell_plugin.name}'"),
        task_params=resolve(groups["task"], routed["task"], f"task '{task_plugin.name}'"),
        threads=check_threads(threads),
        _token=_VALIDATED,
    )
