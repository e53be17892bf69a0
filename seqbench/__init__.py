"""seqbench: fair, reproducible comparisons of recurrent cells across sequence tasks.

Two audiences, one import. Plugin authors get the contracts (`Cell`, `Task`, `TaskData`,
`Param`, ...) and their version, `PLUGIN_API`; notebooks and scripts get the API of
`seqbench.api`, one function per `seqbench` command: `run`, `load`, `generate`, `export`,
`sweep`, `report`, `publish`, `data`, `list`, `new`, and `cells`, `tasks`, `register` (see
docs/python.md). Nothing here imports torch, and the API
is loaded on first use, so `import seqbench` and `seqbench --help` stay fast.
"""

from typing import Any

from seqbench.batching import IndexedData, batch_count, batch_rows
from seqbench.contracts import (
    Batch,
    Cell,
    CheckCase,
    DataContext,
    PluginContractError,
    Task,
    TaskData,
    plain_totals,
)
from seqbench.datafiles import RemoteFile, cached, content_key, find, locate, sha256_of
from seqbench.errors import SeqbenchError
from seqbench.params import Param
from seqbench.plugin_api import PLUGIN_API
from seqbench.renamed import alias

alias("seqbench.data", "seqbench.datafiles")  # the module's old name; `sb.data` is the API's

#: Names served by `seqbench.api`, imported when first used.
_API = ("Comparison", "Run", "RunSpec", "cells", "data", "export", "generate", "list", "load",
        "new", "publish", "register", "report", "run", "spec_for", "status", "suite", "suite_check",
        "suite_plan", "suite_status", "suites", "sweep", "tasks")

__all__ = [
    "Batch",
    "Cell",
    "CheckCase",
    "DataContext",
    "IndexedData",
    "PLUGIN_API",
    "Param",
    "PluginContractError",
    "RemoteFile",
    "SeqbenchError",
    "Task",
    "TaskData",
    "plain_totals",
    "batch_count",
    "batch_rows",
    "cached",
    "content_key",
    "find",
    "locate",
    "sha256_of",
    # `list` is `seqbench.list()`, never star-imported over the builtin
    *(name for name in _API if name != "list"),
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _API:
        from seqbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'seqbench' has no attribute '{name}'")
