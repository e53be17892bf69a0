"""The plugin contract's version, its history, and whether a plugin's target is served.

A plugin outlives the seqbench it was written for, so the contract (`Cell`, `Task`,
`TaskData`) carries a version of its own, `PLUGIN_API` ("MAJOR.MINOR"), that a plugin may
declare it targets (`Cell(..., plugin_api="1.3")`, `Task.plugin_api = "1.3"`). The rules,
as semantic versioning states them for an interface:

- a *minor* version adds to the contract (a new optional hook, a new declaration) or
  changes a form while the old form keeps working through an adapter that warns
  (`DeprecationWarning`, saying what to change) for at least one more minor version;
- a *major* version removes forms deprecated before it.

So a plugin targeting `M.m` works with any seqbench providing `M.n` for `n >= m`. One
targeting a newer minor may rely on hooks this seqbench never calls, and one targeting
another major on forms that are gone (or not yet there): both are refused when the plugin
loads, with the reason, instead of failing half-way through a run. A plugin that declares
nothing is taken to target the current major; adapters cover the old forms it may use.
Nothing here imports torch.
"""

from __future__ import annotations

from seqbench.errors import SeqbenchError

#: The contract this seqbench provides.
PLUGIN_API = "1.3"

#: What each version changed, newest last; docs/plugins.md's "Changes for plugin authors"
#: repeats it with the migration of each change.
CHANGES: tuple[tuple[str, str], ...] = (
    ("1.0", "Cell(name, summary, build, params); Task.prepare(); TaskData with batches, "
            "num_batches, encoder(params), head(hidden_size, params), loss, statistics, "
            "metrics and the optional hooks (split_sizes, baselines, artifacts)"),
    ("1.1", "TaskData.modules(hidden_size, params) -> (encoder, head) replaces encoder() and "
            "head(), so modules sharing weights are built in one place; the old pair works "
            "through an adapter that warns. Optional hooks: describe, fold, refit, "
            "item_scores, Task.restore, Task.check_case, Task.select_by and per-dataset "
            "declarations"),
    ("1.2", "Task.composes_cells and TaskData.network(cells, hidden_size, params): a task "
            "may build its whole model from a cell factory; TaskData.modules is no longer "
            "abstract"),
    ("1.3", "Cell.plugin_api and Task.plugin_api declare the version a plugin targets; "
            "Task.stratified declares the splits drawn from the training data stratified "
            "by class"),
)


def parse(version: str) -> tuple[int, int]:
    """`"1.3"` -> `(1, 3)`; anything else is a one-line error naming what was given."""
    major, dot, minor = str(version).partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        raise SeqbenchError(f"plugin_api must be 'MAJOR.MINOR' (e.g. '{PLUGIN_API}'), got "
                            f"{version!r}.")
    return int(major), int(minor)


def incompatibility(target: str | None) -> str | None:
    """Why a plugin targeting `target` cannot work with this seqbench, or None if it can."""
    if target is None:
        return None
    try:
        wanted = parse(target)
    except SeqbenchError as exc:
        return str(exc)
    major, minor = parse(PLUGIN_API)
    if wanted[0] == major and wanted[1] <= minor:
        return None
    if wanted[0] < major:
        return (f"it targets plugin API {target}, whose deprecated forms were removed in "
                f"{major}.0; this seqbench provides {PLUGIN_API} (see docs/plugins.md, "
                "'Changes for plugin authors', to update it)")
    return (f"it targets plugin API {target}, newer than the {PLUGIN_API} this seqbench "
            "provides; upgrade seqbench")
