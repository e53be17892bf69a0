"""The translation task's check case: two test sentences whose BLEU is worked out by hand.

References "a b c d e f g h" and "w x y z"; the predicted translations are the first
reference itself and "p q r s" (no word right). Corpus BLEU sums the n-gram counts of
both sentences before dividing: 1- to 4-gram matches 8, 7, 6, 5 of 12, 10, 8, 6
hypothesis n-grams, equal lengths (no brevity penalty), so
BLEU = 100 * (8/12 * 7/10 * 6/8 * 5/6) ** (1/4) = 73.4889, where the mean of the two
sentence BLEUs would be 50 and BLEU from one batch alone 100 or 0. Batches of one
sentence, so a task that averaged batch scores would be caught. The logits are uniform
over the target vocabulary, so perplexity is the vocabulary's size exactly.
"""

from __future__ import annotations

from seqbench import CheckCase
from seqbench.params import resolve

SOURCE = {
    "train": ["A B C", "D E F G", "H I", "J K L M", "N O P", "Q R S"],
    "valid": ["A D", "B C"],
    "test": ["A B C D E F G H", "W X Y Z"],
}
TARGET = {
    "train": ["a b c d", "e f g h", "p q r s", "w x y z", "a e p w", "h s z b"],
    "valid": ["a e", "b c"],
    "test": ["a b c d e f g h", "w x y z"],
}
PREDICTED = ["a b c d e f g h", "p q r s"]
BLEU = 100 * (8 / 12 * 7 / 10 * 6 / 8 * 5 / 6) ** 0.25


def translation_check_case() -> CheckCase:
    import math

    import torch

    from seqbench_tasks.translation.corpus import Parallel
    from seqbench_tasks.translation.data import TranslationData
    from seqbench_tasks.translation.network import Translations
    from seqbench_tasks.translation.task import TranslationTask
    from seqbench_tasks.translation.vocab import encode

    params = resolve(TranslationTask.params, {}, "task 'translation'")
    text = Parallel({s: list(v) for s, v in SOURCE.items()},
                    {s: list(v) for s, v in TARGET.items()}, [], "the check case")
    data = TranslationData("check", encode(text, 100, 0), params)
    size = len(data.target_vocab)

    def predict(batch):
        tokens = [data.target_vocab.encode([PREDICTED[row]])[0][:-1].tolist()
                  for row in batch.extra["rows"]]
        return Translations(torch.zeros(*batch.targets.shape, size), tokens)

    return CheckCase(data=data, predict=predict,
                     expected={"bleu": BLEU, "bleu_lc": BLEU, "ppl": size, "nll": math.log(size)},
                     batch_size=1)
