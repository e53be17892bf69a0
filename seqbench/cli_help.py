"""What the command line offers beyond parsing: shell completion of plugin and dataset
names, and `generate --help`'s list of every task's own options.

Both read the installed plugins when asked (entry-point names for cells and tasks, the task's
declarations for datasets and generate options; no torch), so a third-party plugin is
completed and listed like a built-in one, and nothing here can go stale.
"""

from __future__ import annotations

import typer


def complete_cells(incomplete: str) -> list[str]:
    """Shell completion of a cell name: the installed entry points' names (nothing loaded)."""
    return _names("cell", incomplete)


def complete_tasks(incomplete: str) -> list[str]:
    return _names("task", incomplete)


def complete_cell_list(incomplete: str) -> list[str]:
    """`--cells lstm,g<TAB>`: the last name of a comma-separated list."""
    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in _names("cell", last)
            if name not in done.split(",")]


def complete_datasets(ctx: typer.Context, incomplete: str) -> list[str]:
    """The datasets of the `--task` given before `--dataset` (none without one)."""
    from seqbench import registry

    task = ctx.params.get("task")
    entry = registry.plugins("task").get(task) if task else None
    if entry is None or entry.plugin is None:
        return []
    return [name for name in entry.plugin.datasets if name.startswith(incomplete)]


def _names(kind: str, incomplete: str) -> list[str]:
    from seqbench import registry

    return sorted(ep.name for ep in registry.installed_entry_points(kind)
                  if ep.name.startswith(incomplete))


class TaskOptionsHelp(typer.core.TyperCommand):
    """`generate --help` ends with every installed task's own generate options, read from
    the plugins when the help is shown (their declarations; no torch), so a third-party
    task's options are listed too and the list cannot go stale."""

    def format_help(self, ctx, formatter) -> None:
        from seqbench import registry

        lines = []
        for name, entry in sorted(registry.plugins("task").items()):
            if entry.plugin is None:
                continue
            options = ", ".join(f"{p.name}={p.default!r}" for p in entry.plugin.generate_params)
            lines.append(f"{name}: {options or 'none'}")
        self.epilog = ("Task options (--set KEY=VALUE; steps, temperature, seed, num and input "
                       "have options of their own):\n\n" + "\n\n".join(lines))
        super().format_help(ctx, formatter)
