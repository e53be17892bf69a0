"""Translation: Multi30k German/English/French with an attentional encoder-decoder whose
recurrent parts are the run's cell; test BLEU and chrF with sacrebleu (higher is better)."""

from seqbench_tasks.translation.task import TranslationTask

task = TranslationTask()

__all__ = ["TranslationTask", "task"]
