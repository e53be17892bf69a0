"""The import layers of docs/architecture.md, checked over every import in seqbench/.

Every `import` and `from ... import` of a seqbench module counts, at module level or inside a
function (a lazy import is still a dependency), except those under `if TYPE_CHECKING:`,
which never run. An import may only go down the layers, or sideways inside its own group;
the graph has no cycle. The one documented exception: `seqbench/__init__` serves the API
lazily (`seqbench.run` and friends), an arrow from the bottom to the API that only runs when
a user asks for an API name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqbench"
#: Top to bottom. Each layer is a tuple of groups; groups of one layer do not import each
#: other (reports never train, sweeps never format tables), modules of one group may.
LAYERS: list[tuple[tuple[str, ...], ...]] = [
    (("seqbench.__main__", "seqbench.cli", "seqbench.cli_suite", "seqbench.cli_new",
      "seqbench.cli_options", "seqbench.cli_help", "seqbench.show", "seqbench.summary",
      "seqbench.benchsuite.show"),),
    (("seqbench.api", "seqbench.handles"),),
    (("seqbench.benchsuite",),),
    (("seqbench.reports",),
     ("seqbench.sweeps.runner", "seqbench.sweeps.search", "seqbench.sweeps.select",
      "seqbench.sweeps.finals", "seqbench.sweeps.validation", "seqbench.sweeps.studies",
      "seqbench.sweeps.cache", "seqbench.sweeps.prepared", "seqbench.sweeps.budget",
      "seqbench.sweeps.pruning", "seqbench.sweeps.workers", "seqbench.sweeps.multidevice",
      "seqbench.sweeps.baselines", "seqbench.sweeps.progress"),
     ("seqbench.sweeps.publish",), ("seqbench.datacheck",), ("seqbench.exporter",),
     ("seqbench.scaffold", "seqbench.scaffold_templates"), ("seqbench.testing",)),
    (("seqbench.sweeps.plan", "seqbench.sweeps.space", "seqbench.sweeps.record",
      "seqbench.sweeps.seeds", "seqbench.sweeps.storage", "seqbench.sweeps.locks",
      "seqbench.sweeps"),),
    (("seqbench.train", "seqbench.model", "seqbench.step", "seqbench.best",
      "seqbench.loaders", "seqbench.resume", "seqbench.run_state", "seqbench.loggers",
      "seqbench.runs", "seqbench.run_lock",
      "seqbench.threads", "seqbench.machine"),),
    (("seqbench.config", "seqbench.registry", "seqbench.declarations", "seqbench.contracts",
      "seqbench.core_params", "seqbench.params", "seqbench.batching", "seqbench.datafiles",
      "seqbench.userdata", "seqbench"),),
    (("seqbench.errors", "seqbench.console", "seqbench.renamed", "seqbench.stopping"),),
]
ALLOWED = {("seqbench", "seqbench.api")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def place(module: str) -> tuple[int, int]:
    """(layer, group) of a module: the longest listed name it is, or is inside of."""
    matches = [(len(name), layer, group)
               for layer, groups in enumerate(LAYERS) for group, names in enumerate(groups)
               for name in names if module == name or module.startswith(name + ".")]
    assert matches, f"{module} is in no layer of tests/test_layers.py (and docs/architecture.md)"
    return max(matches)[1:]


def runtime_imports(tree: ast.AST) -> list[ast.stmt]:
    """Import statements that can run (not under `if TYPE_CHECKING:`)."""
    found: list[ast.stmt] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def imports() -> dict[str, set[str]]:
    """seqbench module -> the seqbench modules it imports."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for node in runtime_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif node.level == 0 and node.module:
                names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in
                         modules else node.module for alias in node.names]
            else:
                continue
            targets |= {name for name in names if name.split(".")[0] == "seqbench"}
        graph[module] = targets - {module}
    return graph


GRAPH = imports()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_every_import_goes_down_the_layers(module):
    layer, group = place(module)
    for target in sorted(GRAPH[module]):
        if (module, target) in ALLOWED:
            continue
        below, other = place(target)
        assert below > layer or (below, other) == (layer, group), (
            f"{module} imports {target}, which is not below it (docs/architecture.md)")


#: Lazy imports that still close a cycle, each removed by work in progress elsewhere (the
#: task kit's split moves the probe cell out of testing.tasks); this set only shrinks.
STILL_CYCLIC = {("seqbench.testing.composing", "seqbench.testing.tasks")}


def test_there_is_no_import_cycle():
    graph = {module: targets - {t for m, t in ALLOWED | STILL_CYCLIC if m == module}
             for module, targets in GRAPH.items()}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycle = " -> ".join((*path[path.index(module):], module))
            pytest.fail(f"import cycle: {cycle}")
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, (*path, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


#: Modules still over the limit, each owned by work in progress elsewhere; remove an entry
#: when its module is split (this list only shrinks).
STILL_LONG = {"seqbench.testing.tasks"}


def test_no_module_is_longer_than_a_sitting():
    """A module is read in one sitting: at most 400 lines."""
    long = {module_name(path) for path in PACKAGE.rglob("*.py")
            if len(path.read_text().splitlines()) > 400}
    assert long <= STILL_LONG, f"over 400 lines: {sorted(long - STILL_LONG)}"
