"""Plugin discovery over the `seqbench.cells` and `seqbench.tasks` entry-point groups.

Like pytest/pluggy, every plugin is loaded inside its own guard: a plugin whose import
fails, or which exports the wrong kind of object, is recorded with its distribution and
error instead of breaking discovery. Only a command that *selects* a broken plugin fails,
with a one-line message; `seqbench list` shows all of them, with the full traceback.
A plugin that loads but declares itself wrongly (a search range outside its bounds, a task
default that is not a core hyperparameter) is refused the same way, by the conformance
kit's own declaration checks (`seqbench.declarations`), before any run can trip on it.
So is a plugin written for a contract this seqbench does not provide (`seqbench.plugin_api`:
it targets a newer or removed version, or lacks a method the contract requires).

Like pytest's `-p no:NAME` and `PYTEST_DISABLE_PLUGIN_AUTOLOAD`, a plugin can be switched
off without uninstalling it: `SEQBENCH_DISABLE_PLUGINS=name,...` (or `--disable-plugin`)
skips plugins by plugin or distribution name, and `SEQBENCH_DISABLE_PLUGIN_AUTOLOAD=1` loads
only the plugins seqbench itself ships. Disabled plugins are never imported, so a plugin
that breaks or slows down at import time cannot get in the way. Both are environment
variables so that sweep workers in other processes see the same plugins.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from seqbench.contracts import Cell, Task
from seqbench.declarations import cell_problems, contract_problems, task_problems
from seqbench.errors import SeqbenchError, unknown_name
from seqbench.params import Param

Kind = Literal["cell", "task"]
GROUPS: dict[Kind, str] = {"cell": "seqbench.cells", "task": "seqbench.tasks"}
_EXPECTED: dict[Kind, type] = {"cell": Cell, "task": Task}

DISABLE_ENV = "SEQBENCH_DISABLE_PLUGINS"
NO_AUTOLOAD_ENV = "SEQBENCH_DISABLE_PLUGIN_AUTOLOAD"
#: The distribution whose plugins still load when autoloading is off.
CORE_DISTRIBUTION = "seqbench"


@dataclass(frozen=True)
class PluginEntry:
    """One discovered plugin: the loaded object, or the reason it could not be loaded."""

    kind: Kind
    name: str
    target: str
    distribution: str
    version: str
    plugin: Any = None
    error: str | None = None
    #: The formatted traceback of a load error, for `seqbench list`.
    details: str | None = None
    #: Why the plugin was not loaded at all (it was disabled), or None.
    disabled: str | None = None

    @property
    def summary(self) -> str:
        return getattr(self.plugin, "summary", "") if self.plugin is not None else ""


@dataclass(frozen=True)
class Listing:
    """What `seqbench list` (`seqbench.list()`) shows: the core hyperparameters, and every
    discovered plugin (loaded, disabled, or failed to load with its error)."""

    core: tuple[Param, ...]
    cells: dict[str, PluginEntry]
    tasks: dict[str, PluginEntry]


#: How `seqbench list` and a command selecting the plugin introduce `contract_problems`.
INCOMPATIBLE = "incompatible with this seqbench: "


def installed_entry_points(kind: Kind) -> tuple[EntryPoint, ...]:
    """The installed entry points of `kind`, not loaded: names, targets and distributions
    (what `disable` and `seqbench new` check names against without importing a plugin)."""
    return tuple(entry_points(group=GROUPS[kind]))


def _disabled_names() -> list[str]:
    return [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]


def disable(names: Iterable[str]) -> None:
    """Disable plugins (by plugin or distribution name) here and in processes started later.
    A name no installed plugin or distribution has is refused: a mistyped one would leave
    the plugin the user meant to turn off running, without a word."""
    names = list(names)
    installed = {name for kind in GROUPS for ep in installed_entry_points(kind)
                 for name in (ep.name, *([ep.dist.name] if ep.dist else []))}
    for name in names:
        if name not in installed:
            raise unknown_name("plugin or distribution", name, installed)
    os.environ[DISABLE_ENV] = ",".join([*_disabled_names(), *names])
    discover.cache_clear()


def _disabled_reason(name: str, distribution: str) -> str | None:
    names = _disabled_names()
    if name in names or distribution in names:
        return f"disabled by {DISABLE_ENV} / --disable-plugin"
    autoload_off = os.environ.get(NO_AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false")
    if autoload_off and distribution != CORE_DISTRIBUTION:
        return f"not autoloaded: {NO_AUTOLOAD_ENV} is set"
    return None


def _load(kind: Kind, ep: EntryPoint) -> PluginEntry:
    dist = ep.dist
    base = dict(
        kind=kind,
        name=ep.name,
        target=ep.value,
        distribution=dist.metadata["Name"] if dist is not None else "?",
        version=dist.version if dist is not None else "?",
    )
    disabled = _disabled_reason(ep.name, base["distribution"])
    if disabled is not None:
        return PluginEntry(**base, disabled=disabled)
    try:
        obj = ep.load()
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must never break discovery
        if isinstance(exc, KeyboardInterrupt):
            raise
        return PluginEntry(**base, error=f"{type(exc).__name__}: {exc}",
                           details="".join(traceback.format_exception(exc)))
    expected = _EXPECTED[kind]
    if isinstance(obj, type) and issubclass(obj, expected):
        lacking = contract_problems(obj)
        if lacking:
            return PluginEntry(**base, error=INCOMPATIBLE + "; ".join(lacking))
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            return PluginEntry(**base, error=f"{type(exc).__name__} while instantiating: {exc}",
                               details="".join(traceback.format_exception(exc)))
    if not isinstance(obj, expected):
        return PluginEntry(
            **base,
            error=f"'{ep.value}' is a {type(obj).__name__}, not a seqbench.{expected.__name__}",
        )
    if obj.name != ep.name:
        return PluginEntry(
            **base, error=f"entry point is named '{ep.name}' but the plugin says '{obj.name}'"
        )
    incompatible = contract_problems(obj)
    if incompatible:
        return PluginEntry(**base, error=INCOMPATIBLE + "; ".join(incompatible))
    problems = (cell_problems if kind == "cell" else task_problems)(obj)
    if problems:
        return PluginEntry(**base, error="malformed declaration: " + "; ".join(problems))
    return PluginEntry(**base, plugin=obj)


@functools.cache
def discover(kind: Kind) -> dict[str, PluginEntry]:
    """All plugins of `kind`, loaded once per process, keyed by name."""
    found: dict[str, PluginEntry] = {}
    for ep in installed_entry_points(kind):
        entry = _load(kind, ep)
        other = found.get(ep.name)
        if other is not None and (entry.disabled or other.disabled):
            # Disabling one side of a name clash is how a user resolves it.
            found[ep.name] = other if entry.disabled else entry
            continue
        if other is not None:
            entry = PluginEntry(
                kind=kind,
                name=ep.name,
                target=ep.value,
                distribution=entry.distribution,
                version=entry.version,
                error=f"name clash: '{ep.name}' is also provided by {other.distribution}",
            )
        found[ep.name] = entry
    return found


#: Plugins defined in this process (`register`), by kind and name.
_REGISTERED: dict[Kind, dict[str, PluginEntry]] = {"cell": {}, "task": {}}
#: The `distribution` of a plugin registered in-process: it has no installed code.
IN_PROCESS = "(registered in this process)"


def register(plugin: Cell | Task | type[Task]) -> Cell | Task:
    """Make a cell or task defined in this process (a notebook, a script) usable by name.

    Registering the same name again replaces it, as re-running a notebook cell expects; a
    name an installed plugin already uses is refused, so a run record's name stays
    unambiguous. Worker processes (`--jobs > 1`) do not see these plugins.
    """
    if isinstance(plugin, type) and issubclass(plugin, Task):
        _refuse_incompatible(plugin)
        plugin = plugin()
    kinds = [kind for kind, expected in _EXPECTED.items() if isinstance(plugin, expected)]
    if not kinds:
        raise SeqbenchError(f"register() takes a seqbench.Cell or seqbench.Task, not a "
                            f"{type(plugin).__name__}.")
    kind = kinds[0]
    _refuse_incompatible(plugin)
    problems = (cell_problems if kind == "cell" else task_problems)(plugin)
    if problems:
        raise SeqbenchError(f"{kind} '{plugin.name}': malformed declaration: "
                            + "; ".join(problems))
    installed = discover(kind).get(plugin.name)
    if installed is not None and installed.disabled is None:
        raise SeqbenchError(f"{kind} '{plugin.name}' is already provided by "
                            f"{installed.distribution} {installed.version}; give yours "
                            "another name.")
    origin = type(plugin) if isinstance(plugin, Task) else plugin.build
    _REGISTERED[kind][plugin.name] = PluginEntry(
        kind=kind, name=plugin.name,
        target=f"{origin.__module__}:{getattr(origin, '__qualname__', '?')}",
        distribution=IN_PROCESS, version="", plugin=plugin)
    return plugin


def _refuse_incompatible(plugin: Any) -> None:
    problems = contract_problems(plugin)
    if problems:
        name = getattr(plugin, "name", getattr(plugin, "__name__", "?"))
        raise SeqbenchError(f"'{name}' is {INCOMPATIBLE}" + "; ".join(problems))


def plugins(kind: Kind) -> dict[str, PluginEntry]:
    """Installed (entry-point) and in-process plugins of `kind`, keyed by name."""
    return {**discover(kind), **_REGISTERED[kind]}


def in_process(kind: Kind, name: str) -> bool:
    """Whether `name` is a plugin registered in this process (not importable elsewhere)."""
    return name in _REGISTERED[kind]


def _get(kind: Kind, name: str) -> Any:
    entries = plugins(kind)
    if name not in entries:
        raise unknown_name(kind, name, entries)
    entry = entries[name]
    if entry.disabled is not None:
        raise SeqbenchError(
            f"{kind} plugin '{name}' from {entry.distribution} {entry.version} is "
            f"{entry.disabled}."
        )
    if entry.error is not None:
        raise SeqbenchError(
            f"{kind} plugin '{name}' from {entry.distribution} {entry.version} "
            f"failed to load: {entry.error}"
        )
    return entry.plugin


def provenance(cell: str, task: str) -> dict[str, dict[str, str]]:
    """Which distribution, at which version, provides the cell and the task: recorded with
    every run and study so a result obtained with third-party code can be traced to it.
    The cell's family is recorded too, so a report groups cells by family from the
    storage alone, even where the cell's plugin is not installed."""
    def source(kind: Kind, name: str) -> dict[str, str]:
        entry = plugins(kind)[name]
        return {"name": name, "distribution": entry.distribution, "version": entry.version}

    return {"cell": {**source("cell", cell), "family": get_cell(cell).family},
            "task": source("task", task)}


def get_cell(name: str) -> Cell:
    """The cell plugin called `name`; a one-line SeqbenchError if unknown or broken."""
    return _get("cell", name)


def get_task(name: str) -> Task:
    """The task plugin called `name`; a one-line SeqbenchError if unknown or broken."""
    return _get("task", name)
