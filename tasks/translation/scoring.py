"""BLEU and chrF with sacrebleu, summed over a split as sufficient statistics.

Corpus BLEU is not an average of sentence scores: it is computed from n-gram match and
length counts summed over the whole test set (Papineni et al. 2002), and chrF likewise
from summed character n-gram counts (Popović 2015). The core sums `statistics` over every
batch before `metrics` is called once, so each batch contributes sacrebleu's own
per-sentence statistics and the score is sacrebleu's, computed once from their sum:
exactly `sacrebleu.corpus_bleu` on the whole split (tested), with sacrebleu's defaults
(13a tokenisation, exponential smoothing; chrF2 with character 6-grams).

`_extract_corpus_statistics` / `_compute_score_from_stats` are the methods sacrebleu's own
corpus scores and paired significance tests are built on; sacrebleu is pinned below 3.

`bleu_lc` is BLEU on lowercased text, because most published Multi30k results lowercase
both sides; the primary metric stays cased BLEU on detokenised text (sacrebleu's standard).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Metric name -> the sacrebleu metric class and its options.
METRICS = {"bleu": ("BLEU", {}), "bleu_lc": ("BLEU", {"lowercase": True}), "chrf": ("CHRF", {})}


@functools.cache
def metric(name: str):
    import sacrebleu.metrics

    kind, options = METRICS[name]
    scorer = getattr(sacrebleu.metrics, kind)(**options)
    # Every score here has one reference per sentence; saying so up front (sacrebleu learns
    # it on the first scoring) lets `seqbench data` print the signature before any scoring.
    scorer.num_refs = 1
    return scorer


def sentence_statistics(hypotheses: Sequence[str], references: Sequence[str]
                        ) -> dict[str, np.ndarray]:
    """`[sentences, k]` sufficient statistics of every metric, one row per sentence."""
    return {name: np.asarray(metric(name)._extract_corpus_statistics(list(hypotheses),
                                                                      [list(references)]),
                             dtype=np.int64).reshape(len(hypotheses), -1)
            for name in METRICS}


def summed(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, np.ndarray]:
    """Every metric's statistics summed over the sentences: what a batch contributes."""
    return {name: rows.sum(0) for name, rows in sentence_statistics(hypotheses,
                                                                     references).items()}


def scores(totals: Mapping[str, Any]) -> dict[str, float]:
    """Each metric from its statistics summed over a whole split."""
    return {name: float(metric(name)._compute_score_from_stats(
        [int(round(value)) for value in totals[name]]).score) for name in METRICS}


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Every metric of a whole system output (what the baselines are scored with)."""
    return scores(summed(hypotheses, references))


def signatures() -> dict[str, str]:
    """sacrebleu's signature of each metric: what a reader needs to compare numbers."""
    return {name: str(metric(name).get_signature()) for name in METRICS}
