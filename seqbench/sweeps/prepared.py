"""Prepared data for a sweep worker, cached by the task parameters `prepare()` actually read.

A trial that samples a data-side task parameter (speech `pooling`, lm `bptt`) must train on
the data that parameter asks for; preparing once from the base spec silently ignored it.
Preparing for every trial would repeat slow work (tokenising, MFCCs) that most parameters
never touch. So `prepare()` gets a mapping that records which keys it reads, and a prepared
dataset is reused for any later spec that agrees on exactly those keys. A task must read
the parameters its data depends on inside `prepare()` (not lazily later), which is what
the contract asks of it anyway.
"""

from __future__ import annotations

from typing import Any

from seqbench.config import RunSpec
from seqbench.contracts import TaskData
from seqbench.params import ReadRecorder

#: Prepared datasets kept per worker; older ones are dropped first.
KEEP = 4


class PreparedData:
    """`get(spec)` returns the spec's prepared data, preparing only when no cached one fits."""

    def __init__(self, data_dir: str | None) -> None:
        self.data_dir = data_dir
        self.entries: list[tuple[str, dict[str, Any], TaskData]] = []
        self.prepared = 0

    def get(self, spec: RunSpec) -> TaskData:
        from seqbench.train import prepare_data

        for dataset, read, data in self.entries:
            if dataset == spec.dataset and all(
                    spec.task_params.get(key) == value for key, value in read.items()):
                return data
        recorder = ReadRecorder(spec.task_params)
        data = prepare_data(spec, self.data_dir, params=recorder)
        self.prepared += 1
        self.entries = [*self.entries[-(KEEP - 1):],
                        (spec.dataset, {key: spec.task_params[key] for key in recorder.read},
                         data)]
        return data
