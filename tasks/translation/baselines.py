"""Non-neural reference translations: the source copied, and a word-for-word dictionary.

Copying the source scores above zero wherever the languages share strings (names,
numbers, punctuation, cognates); a model has to beat it by far to have translated
anything. The dictionary baseline translates each source word by the target word it is
most associated with in the training pairs, by the Dice coefficient of the two words'
sentence co-occurrence, 2 c(s, t) / (c(s) + c(t)) (Dice 1945; the classic association
score for word alignment, Smadja et al. 1996, Och & Ney 2003), keeping the source order
and copying words never seen in training. It knows the lexicon but no reordering, no
agreement and no one-to-many translations: what a model learns beyond a bilingual
lexicon is what separates the two.

Hand-written with scipy's sparse products because it is a few lines: the word-alignment
toolkits (fast_align, GIZA++ for IBM models) are C++ builds, and nltk's IBM Model 1 takes
minutes on 29,000 pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

#: Words and single punctuation marks (sacrebleu's 13a tokenisation splits the same marks).
WORD = re.compile(r"\w+|[^\w\s]")


def words(sentence: str) -> list[str]:
    return WORD.findall(sentence)


def copy_source(sentences: Sequence[str]) -> list[str]:
    return list(sentences)


def dice_dictionary(source: Sequence[str], target: Sequence[str]) -> dict[str, str]:
    """Each training source word -> the target word with the highest Dice coefficient
    (ties: the more frequent target word, then the first in order of appearance)."""
    from scipy import sparse

    def incidence(sentences: Sequence[str]):
        index: dict[str, int] = {}
        rows, columns = [], []
        for row, sentence in enumerate(sentences):
            for word in dict.fromkeys(words(sentence)):  # in order: ties break the same way
                rows.append(row)
                columns.append(index.setdefault(word, len(index)))
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)),
                                   shape=(len(sentences), len(index)))
        return matrix, list(index)

    source_words, source_vocab = incidence(source)
    target_words, target_vocab = incidence(target)
    together = (source_words.T @ target_words).tocsr()  # sentences holding both words
    source_count = np.asarray(source_words.sum(0)).ravel()
    target_count = np.asarray(target_words.sum(0)).ravel()
    dictionary = {}
    for word in range(len(source_vocab)):
        start, end = together.indptr[word], together.indptr[word + 1]
        candidates = together.indices[start:end]
        dice = 2 * together.data[start:end] / (source_count[word] + target_count[candidates])
        # lexsort: the last key is the primary one (Dice), then frequency, then order.
        best = np.lexsort((candidates, -target_count[candidates], -dice))[0]
        dictionary[source_vocab[word]] = target_vocab[candidates[best]]
    return dictionary


def word_for_word(dictionary: dict[str, str], sentences: Sequence[str]) -> list[str]:
    """Each word replaced in place by its dictionary entry (unknown words kept), so the
    output keeps the source's spacing and punctuation: detokenised text, as the model's."""
    return [WORD.sub(lambda match: dictionary.get(match.group(), match.group()), sentence)
            for sentence in sentences]
