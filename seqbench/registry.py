"""Plugin discovery over the `seqbench.cells` and `seqbench.tasks` entry-point groups.

Like pytest/pluggy, every plugin is loaded inside its own guard: a plugin whose import
fails, or which exports the wrong kind of object, is recorded with its distribution and
error instead of breaking discovery. Only a command that *selects* a broken plugin fails,
with a one-line message; `seqbench list` shows all of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from seqbench.contracts import Cell, Task
from seqbench.errors import SeqbenchError, unknown_name

Kind = Literal["cell", "task"]
GROUPS: dict[Kind, str] = {"cell": "seqbench.cells", "task": "seqbench.tasks"}
_EXPECTED: dict[Kind, type] = {"cell": Cell, "task": Task}


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

    @property
    def summary(self) -> str:
        return getattr(self.plugin, "summary", "") if self.plugin is not None else ""


def _load(kind: Kind, ep: EntryPoint) -> PluginEntry:
    dist = ep.dist
    base = dict(
        kind=kind,
        name=ep.name,
        target=ep.value,
        distribution=dist.metadata["Name"] if dist is not None else "?",
        version=dist.version if dist is not None else "?",
    )
    try:
        obj = ep.load()
    except BaseException as exc:  # noqa: BLE001 - a broken plugin must never break discovery
        if isinstance(exc, KeyboardInterrupt):
            raise
        return PluginEntry(**base, error=f"{type(exc).__name__}: {exc}")
    expected = _EXPECTED[kind]
    if isinstance(obj, type) and issubclass(obj, expected):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001
            return PluginEntry(**base, error=f"{type(exc).__name__} while instantiating: {exc}")
    if not isinstance(obj, expected):
        return PluginEntry(
            **base,
            error=f"'{ep.value}' is a {type(obj).__name__}, not a seqbench.{expected.__name__}",
        )
    if obj.name != ep.name:
        return PluginEntry(
            **base, error=f"entry point is named '{ep.name}' but the plugin says '{obj.name}'"
        )
    return PluginEntry(**base, plugin=obj)


@functools.cache
def discover(kind: Kind) -> dict[str, PluginEntry]:
    """All plugins of `kind`, loaded once per process, keyed by name."""
    found: dict[str, PluginEntry] = {}
    for ep in entry_points(group=GROUPS[kind]):
        entry = _load(kind, ep)
        if ep.name in found:
            other = found[ep.name]
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


def _get(kind: Kind, name: str) -> Any:
    entries = discover(kind)
    if name not in entries:
        raise unknown_name(kind, name, entries)
    entry = entries[name]
    if entry.error is not None:
        raise SeqbenchError(
            f"{kind} plugin '{name}' from {entry.distribution} {entry.version} "
            f"failed to load: {entry.error}"
        )
    return entry.plugin


def get_cell(name: str) -> Cell:
    """The cell plugin called `name`; a one-line SeqbenchError if unknown or broken."""
    return _get("cell", name)


def get_task(name: str) -> Task:
    """The task plugin called `name`; a one-line SeqbenchError if unknown or broken."""
    return _get("task", name)
