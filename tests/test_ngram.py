"""Interpolated modified Kneser-Ney (tasks/lm/ngram.py) against a plain dictionary-based
reading of Chen & Goodman's formulas, and on PTB against the published KN5."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from seqbench import DataContext
from seqbench_tasks.lm.ngram import KneserNey, discounts, kneser_ney
from seqbench_tasks.lm.corpus import Streams, load_streams
from seqbench_tasks.lm.task import LanguageData


def reference_log_probabilities(train, stream, vocab_size, order):
    """log P(stream[i] | stream[:i]) for i >= 1, one token at a time, straight from the
    definitions: raw counts at the top order, continuation counts below it, the uniform
    distribution under the unigrams, and the longest context the stream offers."""
    train = [int(t) for t in train]
    counts = {n: Counter(tuple(train[i - n + 1:i + 1]) for i in range(n - 1, len(train)))
              for n in range(1, order + 1)}
    continuation = {n: Counter(gram[1:] for gram in counts[n + 1]) for n in range(1, order)}

    def chen_goodman(values):
        n = [sum(1 for v in values if v == r) for r in (1, 2, 3, 4)]
        y = n[0] / (n[0] + 2 * n[1]) if n[0] + n[1] else 0.5
        if all(n):
            d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
        else:
            d = [y or 0.5] * 3
        return [min(max(value, 0.01), cap) for value, cap in zip(d, (1, 2, 3))]

    def probability(history, token, n, top):
        if n == 0:
            return 1 / vocab_size
        table = counts[n] if top else continuation[n]
        d = chen_goodman(list(table.values()))
        lower = probability(history[1:], token, n - 1, False)
        following = [c for gram, c in table.items() if gram[:-1] == history]
        if not sum(following):
            return lower
        count = table.get(history + (token,), 0)
        own = max(count - d[min(count, 3) - 1], 0) if count else 0
        gamma = sum(d[min(c, 3) - 1] for c in following)
        return (own + gamma * lower) / sum(following)

    result = []
    for i in range(1, len(stream)):
        history = tuple(int(t) for t in stream[max(0, i - order + 1):i])
        if len(history) < order - 1:  # the stream's start: the longest context it has
            result.append(math.log(probability(history, int(stream[i]), len(history) + 1,
                                               False)))
        else:
            result.append(math.log(probability(history, int(stream[i]), order, True)))
    return np.array(result)


def test_every_order_matches_the_definitions_token_by_token():
    rng = np.random.default_rng(0)
    train = rng.choice(5, size=300, p=[0.4, 0.3, 0.15, 0.1, 0.05])
    train[::4] = 1  # some structure, so higher orders see repeated contexts
    stream = np.concatenate([[0, 1, 2], rng.integers(0, 6, 40)])  # 5: never in training
    model = KneserNey(train, vocab_size=6, max_order=4)
    ours = model.log_probabilities(stream)
    for order in range(1, 5):
        expected = reference_log_probabilities(train, stream, 6, order)
        np.testing.assert_allclose(ours[order - 1], expected, rtol=1e-10, err_msg=str(order))


def test_probabilities_sum_to_one_after_any_context():
    rng = np.random.default_rng(1)
    model = KneserNey(rng.integers(0, 7, 500), vocab_size=7, max_order=3)
    for history in ([1, 2], [6, 6], [3]):
        total = sum(np.exp(model.log_probabilities(np.array(history + [w]))[:, -1])
                    for w in range(7))
        np.testing.assert_allclose(total, 1.0, rtol=1e-12)


def test_discounts_follow_chen_and_goodman_and_stay_valid_on_tiny_corpora():
    counts = np.array([1] * 10 + [2] * 4 + [3] * 2 + [4] * 1 + [9] * 3)
    y = 10 / (10 + 2 * 4)
    np.testing.assert_allclose(discounts(counts),
                               [1 - 2 * y * 4 / 10, 2 - 3 * y * 2 / 4, 3 - 4 * y * 1 / 2])
    assert discounts(np.array([5, 7])).tolist() == [0.5, 0.5, 0.5]  # no singletons: fallback
    assert discounts(np.array([], dtype=int)).tolist() == [0.5, 0.5, 0.5]


def test_the_order_is_chosen_on_validation_and_named_in_the_baseline():
    """A stream that repeats a 4-token phrase: longer contexts predict it exactly, and the
    baseline says which order validation chose."""
    phrase = np.array([0, 1, 2, 3] * 60 + [0, 2, 1, 3] * 10)
    order, test_nll = kneser_ney(phrase, phrase[:80], phrase[:80], vocab_size=4, level="word")
    assert order >= 3 and test_nll < 0.3
    streams = Streams({"train": phrase, "valid": phrase[:80], "test": phrase[:80]},
                      ["a", "b", "c", "d"], "word")
    params = {"bptt": 3, "emb_size": 8, "tie_weights": False, "emb_dropout": 0.0,
              "out_dropout": 0.0, "init_range": 0.1, "unigram_bias": False}
    baselines = LanguageData("tiny", streams, params).baselines()
    assert baselines[f"kneser_ney_{order}gram"]["nll"] == pytest.approx(test_nll)
    assert test_nll < baselines["bigram"]["nll"]


@pytest.mark.realdata
def test_kn5_on_ptb_is_the_published_one(real_data_dir, tmp_path):
    """Mikolov et al. (2011) give KN5 test perplexity 141.2 on PTB; ours is 141.1."""
    streams = load_streams("ptb", DataContext(real_data_dir, tmp_path))
    order, nll = kneser_ney(streams.ids["train"], streams.ids["valid"], streams.ids["test"],
                            len(streams.vocab), "word")
    assert order == 5 and math.exp(nll) == pytest.approx(141.1, abs=0.1)
