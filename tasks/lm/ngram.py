"""Interpolated modified Kneser-Ney n-gram model (Chen & Goodman 1999): the strong count
baseline of language modelling, the "KN5" that recurrent models were first measured
against on the Penn Treebank (Mikolov et al. 2011: test perplexity 141.2).

Hand-written, in numpy, because the field's implementations do not fit here: KenLM is a
C++ build (its Python package only queries models that its `lmplz` binary estimates), and
nltk.lm's `KneserNeyInterpolated` scores one word at a time in pure Python, with a sum
over the vocabulary per unseen context (hours on PTB's test set). This one counts every
order at once and scores whole streams vectorised: seconds on PTB.

The model, for an order-n context h and a token w, with h' the context without its first
token:

    P(w | h) = max(c(hw) - D(c(hw)), 0) / c(h.) + gamma(h) P(w | h'),
    gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h.)

where c is the raw count at the highest order and the continuation count N1+(. g) (the
number of distinct tokens seen before g) at every lower order; N_r(h.) is the number of
tokens seen after h exactly r times (3 or more for N3+), and D1, D2, D3+ are Chen and
Goodman's discounts from each order's counts of counts. The unigram level interpolates
with the uniform distribution, so no token has probability zero. A context never seen in
training gives all its mass to the lower order. This is KenLM's default estimate, without
sentence-boundary tokens: the corpus is one stream, read as the networks read it.

The order is the one of 1..`max_order` that fits the validation stream best (as the
bigram's interpolation weight), never the test stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Largest order tried: KN5 for words (the usual PTB reference), longer contexts for
#: characters, whose n-grams are much denser.
MAX_ORDER = {"char": 10}
DEFAULT_MAX_ORDER = 5


@dataclass
class Level:
    """One order's n-grams: sorted codes (context index * vocab + token), with the counts
    the model uses there and, per context, their sum and counts of counts times discounts."""

    codes: np.ndarray
    counts: np.ndarray
    totals: np.ndarray
    backoff_mass: np.ndarray
    discounts: np.ndarray


def lookup(sorted_codes: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Index of each wanted code in `sorted_codes`, or -1 where it is absent."""
    if not len(sorted_codes):
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_codes, wanted), len(sorted_codes) - 1)
    return np.where((wanted >= 0) & (sorted_codes[at] == wanted), at, -1)


def discounts(counts: np.ndarray) -> np.ndarray:
    """D1, D2, D3+ (Chen & Goodman 1999, eq. 26) from the counts of counts n1..n4, each
    kept in (0, r]; where a count of counts is zero (tiny corpora), the single discount
    n1 / (n1 + 2 n2), or 0.5."""
    n = np.array([np.sum(counts == r) for r in (1, 2, 3, 4)], dtype=float)
    y = n[0] / (n[0] + 2 * n[1]) if n[0] + n[1] > 0 else 0.5
    if np.all(n > 0):
        d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    else:
        d = np.full(3, y if y > 0 else 0.5)
    return np.clip(d, 0.01, [1.0, 2.0, 3.0])


def level(codes: np.ndarray, counts: np.ndarray, vocab_size: int, contexts: int) -> Level:
    """The per-context sums and back-off masses of one order's n-grams."""
    keep = counts > 0
    codes, counts = codes[keep], counts[keep]
    d = discounts(counts)
    context = codes // vocab_size
    per_gram = d[np.minimum(counts, 3) - 1]
    return Level(codes, counts,
                 np.bincount(context, weights=counts, minlength=contexts),
                 np.bincount(context, weights=per_gram, minlength=contexts), d)


class KneserNey:
    """Counts of every order up to `max_order` from one training stream."""

    def __init__(self, train: np.ndarray, vocab_size: int, max_order: int) -> None:
        self.vocab_size, self.max_order = vocab_size, max_order
        tokens = np.asarray(train, dtype=np.int64)
        # Per order: the index of the n-gram ending at each position among that order's
        # sorted unique codes (-1 before the stream is long enough), the codes, where each
        # first occurs, and their counts. An n-gram's code is the index of its first n - 1
        # tokens among the (n-1)-grams times the vocabulary size plus its last token, so
        # codes stay below len(stream) * vocab_size at every order.
        ending, unique, first, raw_counts = [], [], [], []
        for order in range(1, max_order + 1):
            code = np.full(len(tokens), -1, dtype=np.int64)
            code[order - 1:] = tokens[order - 1:] if order == 1 else \
                ending[-1][order - 2:-1] * vocab_size + tokens[order - 1:]
            valid = np.flatnonzero(code >= 0)
            codes, at, counts = np.unique(code[valid], return_index=True, return_counts=True)
            index = np.full(len(tokens), -1, dtype=np.int64)
            index[valid] = np.searchsorted(codes, code[valid])
            ending.append(index)
            unique.append(codes)
            first.append(valid[at])
            raw_counts.append(counts)
        contexts = [1] + [len(codes) for codes in unique[:-1]]
        #: Raw-count levels (used at the top order) and continuation-count levels (below it).
        self.raw = [level(unique[k], raw_counts[k], vocab_size, contexts[k])
                    for k in range(max_order)]
        self.continuation = [  # N1+(. g): distinct (n+1)-grams whose last n tokens are g
            level(unique[k], np.bincount(ending[k][first[k + 1]], minlength=len(unique[k])),
                  vocab_size, contexts[k])
            for k in range(max_order - 1)]

    def log_probabilities(self, stream: np.ndarray) -> np.ndarray:
        """log P of every token of `stream[1:]` given what precedes it in the stream, for
        every order 1..max_order: `[max_order, len(stream) - 1]`."""
        tokens = np.asarray(stream, dtype=np.int64)
        target = tokens[1:]
        lower = np.full(len(target), 1.0 / self.vocab_size)  # continuation levels below
        context = np.zeros(len(target), dtype=np.int64)  # the empty context of unigrams
        ending = lookup(self.raw[0].codes, tokens)  # the unigram at each position
        result = []
        for order in range(1, self.max_order + 1):
            result.append(np.log(self._interpolate(self.raw[order - 1], context, target, lower)))
            if order == self.max_order:
                break
            lower = self._interpolate(self.continuation[order - 1], context, target, lower)
            context = ending[:-1]  # the next order's context: this order's n-gram before it
            wanted = np.where(ending[:-1] >= 0, ending[:-1] * self.vocab_size + target, -1)
            ending = np.concatenate([[-1], lookup(self.raw[order].codes, wanted)])
        return np.array(result)

    def nll_by_order(self, stream: np.ndarray) -> np.ndarray:
        """Mean negative log-likelihood (nats) of `stream[1:]` for each order: `[max_order]`."""
        return -self.log_probabilities(stream).mean(axis=1)

    def _interpolate(self, level: Level, context: np.ndarray, target: np.ndarray,
                     lower: np.ndarray) -> np.ndarray:
        """P(target | context) at one level, interpolated with `lower`; an unseen context
        (index -1, or no counts after it) passes `lower` on unchanged."""
        seen = context >= 0
        safe = np.where(seen, context, 0)
        total = np.where(seen, level.totals[safe], 0.0)
        found = lookup(level.codes, np.where(seen, safe * self.vocab_size + target, -1))
        count = np.where(found >= 0, level.counts[np.maximum(found, 0)], 0)
        discount = np.where(count > 0, level.discounts[np.clip(count, 1, 3) - 1], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.maximum(count - discount, 0) / total
            gamma = level.backoff_mass[safe] / total
        return np.where(total > 0, own + gamma * lower, lower)


def kneser_ney(train: np.ndarray, valid: np.ndarray, test: np.ndarray, vocab_size: int,
               level: str) -> tuple[int, float]:
    """(order, mean test NLL per token) of the order that fits `valid` best."""
    model = KneserNey(train, vocab_size, MAX_ORDER.get(level, DEFAULT_MAX_ORDER))
    order = int(np.argmin(model.nll_by_order(valid))) + 1
    return order, float(model.nll_by_order(test)[order - 1])
