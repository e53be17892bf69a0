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
from dataclasses import InitVar, dataclass, field
from types import MappingProxyType
from typing import Any

from seqbench import registry
from seqbench.contracts import Cell, Task
from seqbench.core_params import core_params_for
from seqbench.errors import SeqbenchError, unknown_name
from seqbench.params import Param, check_seed, check_threads, resolve
from seqbench.renamed import forward

DEVICES = ("auto", "cpu", "cuda")
#: The core hyperparameter table moved to `seqbench.core_params`; its old names still read.
__getattr__ = forward(__name__, dict.fromkeys(
    ("CORE_PARAMS", "OPTIMIZERS", "SEARCHED_OPTIMIZERS", "LR_SEARCH"), "seqbench.core_params"))


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
        """Re-validate a stored spec (e.g. a run record's) against the installed plugins. A
        parameter the stored spec lacks takes its `Param.before`: the spec was written before
        the parameter existed, and means what the code did then."""
        task, cell = registry.get_task(data["task"]), registry.get_cell(data["cell"])
        dataset = data.get("dataset") or task.default_dataset
        settings: dict[str, Any] = {}
        for prefix, stored, params in (
                ("", data.get("hparams", {}), core_params_for(task, dataset)),
                ("cell.", data.get("cell_params", {}), cell.params),
                ("task.", data.get("task_params", {}), task.params)):
            settings.update({f"{prefix}{p.name}": p.before for p in params
                             if p.before is not None and p.name not in stored})
            settings.update({f"{prefix}{k}": v for k, v in stored.items()})
        return build_spec(task, cell, dataset, settings, seed=data.get("seed", 0),
                          device=data.get("device", "auto"), threads=data.get("threads"))

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


def route_settings(
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


@dataclass(frozen=True)
class Resolved:
    """Validated settings before they become a spec: what `build_spec` and `seqbench data`
    (which inspects a dataset before any cell is chosen) both check, in one place."""

    task: Task
    dataset: str
    hparams: dict[str, Any]
    task_params: dict[str, Any]
    cell_params: dict[str, Any]


def resolve_settings(task: str | Task, dataset: str | None, settings: Mapping[str, Any] | None,
                     cell: str | Cell | None = None) -> Resolved:
    """Check the dataset and route and validate every setting: the core's, the task's and,
    given a `cell`, the cell's (without one, a cell's setting is an unknown name)."""
    task_plugin = task if isinstance(task, Task) else registry.get_task(task)
    dataset = dataset or task_plugin.default_dataset
    if dataset not in task_plugin.datasets:
        raise unknown_name("dataset", dataset, task_plugin.datasets,
                           owner=f"task '{task_plugin.name}'")
    groups = {"core": core_params_for(task_plugin, dataset)}
    if cell is not None:
        groups["cell"] = cell.params
    groups["task"] = task_plugin.params
    routed = route_settings(settings or {}, groups)
    hparams = resolve(groups["core"], routed["core"], "training")
    if hparams["refit"] and hparams["folds"] > 1:
        raise SeqbenchError("refit=true trains on every training fold at once; it cannot be "
                            f"combined with folds={hparams['folds']}.")
    if hparams["fold"] >= hparams["folds"]:
        raise SeqbenchError(f"fold={hparams['fold']} must be below folds={hparams['folds']} "
                            "(folds are numbered from 0).")
    return Resolved(
        task=task_plugin, dataset=dataset, hparams=hparams,
        task_params=resolve(groups["task"], routed["task"], f"task '{task_plugin.name}'"),
        cell_params={} if cell is None else resolve(groups["cell"], routed["cell"],
                                                     f"cell '{cell.name}'"))


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
    if not isinstance(task, Task):
        task = registry.get_task(task)
    cell_plugin = cell if isinstance(cell, Cell) else registry.get_cell(cell)
    if device not in DEVICES:
        raise unknown_name("device", device, DEVICES)
    resolved = resolve_settings(task, dataset, settings, cell_plugin)
    return RunSpec(
        task=task.name,
        dataset=resolved.dataset,
        cell=cell_plugin.name,
        seed=check_seed(seed),
        device=device,
        hparams=resolved.hparams,
        cell_params=resolved.cell_params,
        task_params=resolved.task_params,
        threads=check_threads(threads),
        _token=_VALIDATED,
    )
