"""Beam search over a decoder whose state layout belongs to the cell (greedy is beam 1).

Batched: every sentence keeps `beam` hypotheses as rows of one batch. At each step the
`2 * beam` best continuations of each sentence are ranked by their summed log-probability;
those among the best `beam` that end in `</s>` are finished, scored by log-probability
over the GNMT length penalty ((5 + |Y|) / 6) ** alpha (Wu et al. 2016; alpha = 0 ranks by
log-probability alone), and the best `beam` others go on. A sentence stops once it has
`beam` finished hypotheses (fairseq's rule); at its length limit the ones still going are
scored as they stand. With beam 1 this is exactly greedy decoding: the likeliest subword
every step, stopping at `</s>`.

Going on from a hypothesis means handing its decoder state to the new row. `seqbench.Cell`
lets a cell keep its state in any layout (a tensor or a nesting of them, the batch in any
dimension), so the batch dimension of every state tensor is found once by running the
stack on batches of one and of two rows, and states are reordered along it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seqbench_tasks.translation.vocab import BOS, EOS


def map_state(function: Callable[..., Any], *states: Any) -> Any:
    """`function` applied to the corresponding leaves of states of the same structure
    (tuples, named tuples, lists, dicts); hand-written as torch's pytree is private API."""
    first = states[0]
    if isinstance(first, dict):
        return type(first)((key, map_state(function, *(s[key] for s in states)))
                           for key in first)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(map_state(function, *parts) for parts in zip(*states)))
    if isinstance(first, (tuple, list)):
        return type(first)(map_state(function, *parts) for parts in zip(*states))
    return function(*states)


def state_batch_dims(stack: nn.Module, input_size: int, like: torch.Tensor) -> Any:
    """For each tensor of `stack`'s state, the dimension holding the batch (None: none)."""
    with torch.no_grad():
        _, one = stack(like.new_zeros(1, 1, input_size))
        _, two = stack(like.new_zeros(2, 1, input_size))

    def batch_dim(a: torch.Tensor, b: torch.Tensor) -> int | None:
        return next((d for d in range(a.dim()) if a.shape[d] != b.shape[d]), None)

    return map_state(batch_dim, one, two)


def reorder(state: Any, dims: Any, index: torch.Tensor) -> Any:
    """The state of rows `index` (a row may be taken twice, or not at all)."""
    return map_state(lambda tensor, dim: tensor if dim is None else tensor.index_select(dim, index),
                     state, dims)


def length_penalty(length: int, alpha: float) -> float:
    return ((5 + length) / 6) ** alpha


def beam_search(step: Callable[[torch.Tensor, Any, Any], tuple[torch.Tensor, Any]],
                source: Any, beam: int, max_lengths: torch.Tensor, alpha: float,
                state_dims: Any) -> list[list[int]]:
    """The best hypothesis (subword ids, `</s>` left off) of every sentence of `source`,
    sentence i stopping at `max_lengths[i]` subwords at the latest.

    `step(previous[N], state, source_rows)` gives the log-probabilities `[N, V]` of the
    next subword and the new state; `source.rows(index)` repeats the encoded sentences.
    A sentence's result does not depend on the sentences decoded beside it.
    """
    sentences = len(max_lengths)
    rows = torch.arange(sentences, device=max_lengths.device)
    source = source.rows(rows.repeat_interleave(beam))
    # Every hypothesis starts as `<s>`; only the first of each sentence is live, so the
    # first step does not fill the beam with copies of one continuation.
    scores = torch.full((sentences, beam), float("-inf"), device=rows.device)
    scores[:, 0] = 0.0
    previous = torch.full((sentences * beam,), BOS, dtype=torch.long, device=rows.device)
    history = previous.new_zeros(sentences * beam, 0)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(sentences)]
    done = torch.zeros(sentences, dtype=torch.bool, device=rows.device)
    state = None
    for length in range(1, int(max_lengths.max()) + 1):
        log_probs, state = step(previous, state, source)
        vocab = log_probs.shape[1]
        total = (scores.reshape(-1, 1) + log_probs).reshape(sentences, beam * vocab)
        best, where = total.topk(min(2 * beam, beam * vocab), dim=1)
        parent, word = where // vocab, where % vocab
        ending = (word[:, :beam] == EOS) & best[:, :beam].isfinite() & ~done[:, None]
        for sentence, rank in ending.nonzero().tolist():
            hypothesis = history[sentence * beam + parent[sentence, rank]].tolist()
            finished[sentence].append((float(best[sentence, rank])
                                       / length_penalty(length, alpha), hypothesis))
        # The best `beam` continuations that do not end the sentence go on.
        going = (word == EOS).to(torch.int8).argsort(dim=1, stable=True)[:, :beam]
        scores, parent, word = (part.gather(1, going) for part in (best, parent, word))
        chosen = (rows[:, None] * beam + parent).reshape(-1)
        history = torch.cat([history[chosen], word.reshape(-1, 1)], 1)
        # At its length limit, a sentence's hypotheses still going are scored as they are.
        for sentence in ((max_lengths == length) & ~done).nonzero().flatten().tolist():
            finished[sentence] += [(float(scores[sentence, rank]) / length_penalty(length, alpha),
                                    history[sentence * beam + rank].tolist())
                                   for rank in range(beam) if scores[sentence, rank].isfinite()]
        done |= (max_lengths == length) | torch.tensor([len(f) >= beam for f in finished],
                                                        device=rows.device)
        if bool(done.all()):
            break
        state = reorder(state, state_dims, chosen)
        previous = word.reshape(-1)
    return [max(hypotheses, key=lambda pair: pair[0])[1] for hypotheses in finished]
