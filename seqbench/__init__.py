"""seqbench: fair, reproducible comparisons of recurrent cells across sequence tasks.

The public API for plugin authors is what this module exports; nothing here imports torch,
so `seqbench --help` and `seqbench list` stay fast.
"""

from seqbench.batching import IndexedData, batch_count, batch_rows
from seqbench.contracts import Batch, Cell, CheckCase, DataContext, Task, TaskData, plain_totals
from seqbench.data import RemoteFile, cached, content_key, find, locate, sha256_of
from seqbench.errors import SeqbenchError
from seqbench.params import Param

__all__ = [
    "Batch",
    "Cell",
    "CheckCase",
    "DataContext",
    "IndexedData",
    "Param",
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
]
__version__ = "0.1.0"
