"""Language modelling: Penn Treebank (default), WikiText-2 and Tiny Shakespeare (characters).

Perplexity (word level) and bits per character (char level) over the whole carried stream;
the run record's `train_timesteps_per_second` is tokens per second.
"""

from seqbench_tasks.lm.task import LanguageModelTask

task = LanguageModelTask()

__all__ = ["LanguageModelTask", "task"]
