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

import warnings

from seqbench.errors import SeqbenchError

#: Every version of the contract, oldest first. docs/plugins.md ("Changes for plugin
#: authors") says what each one changed and how to migrate; a test keeps the two in step.
VERSIONS = ("1.0", "1.1", "1.2", "1.3")
#: The contract this seqbench provides.
PLUGIN_API = VERSIONS[-1]


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


def warn_api_1_0_task_modules(task_data: str) -> None:
    """The deprecation a `TaskData` written for plugin API 1.0 gets: it has `encoder(params)`
    and `head(hidden_size, params)`, which `TaskData.modules` still serves until 2.0."""
    warnings.warn(
        f"{task_data} implements encoder(params) and head(hidden_size, params), the "
        "TaskData contract of seqbench plugin API 1.0; since 1.1 implement "
        "modules(hidden_size, params) returning (encoder, head) instead, e.g. `def "
        "modules(self, hidden_size, params): return self.encoder(params), "
        "self.head(hidden_size, params)`. The old pair keeps working until plugin "
        "API 2.0.", DeprecationWarning, stacklevel=4)
