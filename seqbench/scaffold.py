"""`seqbench new cell|task NAME`: write an installable plugin distribution that works.

What a third-party author needs first is not a blank page but a plugin that already passes
the conformance kit and trains, laid out the way the docs recommend (declarations without
torch, entry points, a kit test), to change step by step while the tests stay green.
The files themselves are in `seqbench.scaffold_templates`.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

from seqbench import PLUGIN_API, __version__
from seqbench import scaffold_templates as t
from seqbench.errors import SeqbenchError

NAME = re.compile(r"[a-z][a-z0-9_]*")

#: kind -> (description, files relative to the distribution folder -> template).
LAYOUTS = {
    "cell": ("A recurrent cell for seqbench.", {
        "src/$package/__init__.py": '"""The $name cell for seqbench (declared in plugin.py)."""\n',
        "src/$package/plugin.py": t.CELL_PLUGIN,
        "src/$package/step.py": t.CELL_STEP,
        "tests/test_$name.py": t.CELL_TEST,
    }),
    "task": ("A sequence task for seqbench.", {
        "src/$package/__init__.py": '"""The $name task for seqbench (declared in plugin.py)."""\n',
        "src/$package/plugin.py": t.TASK_PLUGIN,
        "src/$package/data.py": t.TASK_DATA,
        "tests/test_$name.py": t.TASK_TEST,
    }),
}
RUN = {"cell": "seqbench run --cell $name --task forecasting --epochs 5",
       "task": "seqbench run --task $name --cell gru"}


def refuse_an_installed_name(kind: str, name: str) -> None:
    """Two installed plugins of one name clash and neither loads, so a scaffold named like
    an installed one (`lstm`) would break the built-in it was meant to sit beside."""
    from seqbench.registry import installed_entry_points

    taken = {ep.name: ep.value for ep in installed_entry_points(kind)}
    if name in taken:
        raise SeqbenchError(f"a {kind} plugin named '{name}' is already installed "
                            f"({taken[name]}); two plugins of one name clash, so choose "
                            "another name.")


def scaffold(kind: str, name: str, directory: Path | None = None) -> list[Path]:
    """Write the `seqbench-NAME` distribution for a cell or task plugin; return its files.

    `directory` defaults to `./seqbench-NAME`; it must not exist or be empty, so nothing
    of the author's is ever overwritten. It names only the folder: the distribution is
    `seqbench-NAME` and the import package `seqbench_NAME` wherever they are written.
    """
    if not NAME.fullmatch(name):
        raise SeqbenchError(f"plugin name '{name}' must be lowercase letters, digits and "
                            "underscores, starting with a letter (it becomes the import "
                            f"name seqbench_{name}).")
    refuse_an_installed_name(kind, name)
    target = Path(directory) if directory is not None else Path(f"seqbench-{name}")
    if target.exists() and any(target.iterdir()):
        raise SeqbenchError(f"'{target}' already exists and is not empty; choose another "
                            "folder with --dir.")
    description, files = LAYOUTS[kind]
    values = {"name": name, "package": f"seqbench_{name}", "group": kind,
              "cls": "".join(part.capitalize() for part in name.split("_")),
              "seqbench": __version__, "plugin_api": PLUGIN_API, "description": description,
              "torch_module": "`step.py`" if kind == "cell" else "`data.py`"}
    values["run"] = Template(RUN[kind]).substitute(values)
    files = {"pyproject.toml": t.PYPROJECT, "README.md": t.README, **files}
    written = []
    for relative, template in files.items():
        path = target / Template(relative).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template).substitute(values))
        written.append(path)
    return written
