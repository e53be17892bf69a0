"""Long-range dependency tasks for seqbench: the adding problem (Hochreiter & Schmidhuber 1997).

Only seqbench's public API is used; the entry point in pyproject.toml points at `task`.
"""

from seqbench_longrange.task import AddingTask

task = AddingTask()

__all__ = ["AddingTask", "task"]
