"""docs/plugins.md cannot drift from the code: its code blocks are a plugin that is
installed and checked here, and its lists of names are compared with the code's.

Blocks starting with `# file: PATH` are written out (the `pyproject.toml` block is
installed as pip records an editable install: a dist-info with its entry points and
`src/` on sys.path); every other `python` block is executed in order.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

from seqbench import Param, registry
from seqbench.core_params import CORE_PARAMS
from seqbench.testing.cells import CELL_CHECKS
from seqbench.testing.tasks import TASK_CHECKS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, re.S)


def test_the_docs_code_blocks_make_a_plugin_that_passes_the_kit(tmp_path, monkeypatch):
    scripts = []
    for language, code in BLOCKS:
        first, _, rest = code.partition("\n")
        if first.startswith("# file: "):
            path = tmp_path / first.removeprefix("# file: ").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rest if language == "toml" else code)
        elif language == "python":
            scripts.append(code)
    project = tomllib.loads((tmp_path / "pyproject.toml").read_text())["project"]
    info = tmp_path / "site" / "seqbench_docs_example-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\n"
                                   f"Version: {project['version']}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v.split('#')[0].strip()}\n" for k, v in items.items())
        for group, items in project["entry-points"].items()))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    registry.discover.cache_clear()
    assert registry.discover("cell")["indrnn-tutorial"].distribution == "seqbench-docs-example"
    assert registry.discover("task")["sums"].error is None
    assert scripts, "the docs show no kit usage to run"
    for code in scripts:
        exec(compile(code, "docs/plugins.md", "exec"), {"__name__": "docs"})


def test_the_docs_list_every_core_hyperparameter_param_field_and_check():
    core = re.search(r"\*\*The core hyperparameters\*\*.*?:(.*?)\. `seqbench\.core_params",
                     DOC, re.S)
    assert re.findall(r"`(\w+)`", core.group(1)) == [p.name for p in CORE_PARAMS]
    signature = re.search(r"\*\*`seqbench\.Param\((.*?)\)`\*\*", DOC, re.S).group(1)
    assert [a.split("=")[0].strip() for a in signature.split(",")] == [
        f.name for f in dataclasses.fields(Param)]
    tables = set(re.findall(r"^\| `(check_\w+)` \|", DOC, re.M))
    assert tables == {c.__name__ for c in (*CELL_CHECKS, *TASK_CHECKS)}
