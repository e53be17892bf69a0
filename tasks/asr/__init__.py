"""Speech recognition with CTC: connected digit strings from FSDD, or your own recordings.

Default dataset `fsdd-connected` (strings of 1-7 digits joined from one speaker's FSDD
recordings, no recording in two splits); `wav` reads your folder. Label error rate is the
primary metric (minimise); bidirectional encoders with `--set bidirectional=true`.
"""

from seqbench_tasks.asr.task import AsrTask

task = AsrTask()

__all__ = ["AsrTask", "task"]
