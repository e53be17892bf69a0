"""The translation network and its decoding: beam search by hand, exhaustively and against
greedy; attention and padding; incremental decoding equal to teacher forcing."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from seqbench import Batch
from seqbench_tasks.translation.network import Translator, reverse_padded
from seqbench_tasks.translation.search import (
    beam_search,
    length_penalty,
    reorder,
    state_batch_dims,
)
from seqbench_tasks.translation.vocab import BOS, EOS, PAD

A, B = EOS + 1, EOS + 2  # two words after the four specials
#: A Markov chain over the next subword given the previous one (other words: tiny mass).
CHAIN = {BOS: {A: 0.5, B: 0.4, EOS: 0.1},
         A: {EOS: 0.4, A: 0.3, B: 0.3},
         B: {EOS: 0.9, A: 0.05, B: 0.05}}


def chain_step(previous, state, source):
    """`step` of the chain; the state counts steps, kept in dim 1 as nn.GRU keeps it, and
    must follow each hypothesis when the search reorders rows."""
    log_probs = torch.full((len(previous), EOS + 3), -30.0)
    for row, token in enumerate(previous.tolist()):
        for word, p in CHAIN.get(token, {EOS: 1.0}).items():  # unlikely words: then end
            log_probs[row, word] = math.log(p)
    steps = torch.zeros(1, len(previous), 1) if state is None else state + 1
    return log_probs, steps


def chain_source(sentences: int = 1):
    """The chain reads no source: `rows` only has to exist."""
    return SimpleNamespace(rows=lambda index: None)


LIMIT = torch.tensor([5])


def test_greedy_takes_the_likeliest_word_and_beam_finds_the_likelier_sentence():
    # Greedy: "a" (0.5) then </s> (0.4): p = 0.20. "b </s>" has p = 0.4 * 0.9 = 0.36, which
    # a beam of two keeps and finds; beam 1 is greedy.
    assert beam_search(chain_step, chain_source(), 1, LIMIT, 0.0, 1) == [[A]]
    assert beam_search(chain_step, chain_source(), 2, LIMIT, 0.0, 1) == [[B]]
    assert beam_search(chain_step, chain_source(3), 2, torch.tensor([5, 5, 5]), 0.0, 1) == [[B]] * 3


def test_the_length_penalty_follows_gnmt_and_favours_longer_sentences_as_alpha_grows():
    assert length_penalty(1, 0.0) == 1.0
    assert length_penalty(7, 1.0) == 2.0  # (5 + 7) / 6
    assert length_penalty(3, 2.0) == pytest.approx((8 / 6) ** 2)
    # "b </s>" (p = 0.36, 2 subwords) beats "a b </s>" (p = 0.5 * 0.3 * 0.9 = 0.135, 3
    # subwords) on probability, but not once alpha = 8 divides by (7/6)^8 and (8/6)^8.
    short, long = math.log(0.36), math.log(0.135)
    assert short / length_penalty(2, 8.0) < long / length_penalty(3, 8.0)
    assert beam_search(chain_step, chain_source(), 4, torch.tensor([3]), 8.0, 1) == [[A, B]]
    assert beam_search(chain_step, chain_source(), 4, torch.tensor([3]), 0.0, 1) == [[B]]


def test_reorder_follows_the_batch_dimension_of_every_tensor_in_a_nested_state():
    state = {"h": torch.arange(6.0).reshape(1, 3, 2), "pair": (torch.arange(3.0), torch.ones(2))}
    dims = {"h": 1, "pair": (0, None)}
    moved = reorder(state, dims, torch.tensor([2, 2, 0]))
    assert moved["h"][0].tolist() == [[4, 5], [4, 5], [0, 1]]
    assert moved["pair"][0].tolist() == [2, 2, 0] and moved["pair"][1].tolist() == [1, 1]


@pytest.mark.parametrize("make", [
    lambda i, h: nn.GRU(i, h, batch_first=True),
    lambda i, h: nn.LSTM(i, h, num_layers=2, batch_first=True),
])
def test_the_batch_dimension_of_a_cell_s_state_is_found_by_probing(make):
    dims = state_batch_dims(make(3, 5), 3, torch.zeros(1))
    assert dims == 1 or dims == (1, 1)  # nn.GRU: [layers, B, H]; nn.LSTM: (h, c) likewise


def translator(attention: str = "luong", target_vocab: int = 7, alpha: float = 0.0,
               seed: int = 0) -> Translator:
    torch.manual_seed(seed)
    return Translator(lambda width: nn.GRU(width, 8, batch_first=True), 8, 10, target_vocab,
                      4, attention, 0.0, alpha).eval()


def sequence_log_prob(network, source, tokens: list[int]) -> float:
    """log p(tokens | source) by teacher forcing."""
    targets = torch.tensor([tokens])
    log_probs = network.teacher_forced(targets, network.encode(source)).log_softmax(-1)
    return float(log_probs[0, torch.arange(len(tokens)), targets[0]].sum().detach())


def test_a_beam_wide_enough_to_keep_every_prefix_finds_the_most_probable_sentence():
    """Exhaustive search over all sentences of up to 3 subwords (7-word vocabulary): a beam
    that keeps every prefix must return the best one, which also checks that each
    hypothesis carries its own GRU state through the reordering."""
    network = translator()
    source = torch.tensor([[5, 6, 7, EOS]])
    candidates = [[*prefix, EOS] for length in range(3)
                  for prefix in itertools.product([t for t in range(7) if t != EOS],
                                                  repeat=length)]
    candidates += [list(p) for p in itertools.product([t for t in range(7) if t != EOS],
                                                      repeat=3)]
    best = max(candidates, key=lambda tokens: sequence_log_prob(network, source, tokens))
    with torch.no_grad():
        found = beam_search(network.step, network.encode(source), 216, torch.tensor([3]), 0.0,
                            state_batch_dims(network.decoder, network.decoder_width,
                                             torch.zeros(1)))
    assert found == [[t for t in best if t != EOS]]


def test_greedy_decoding_step_by_step_scores_what_teacher_forcing_scores():
    network = translator("bahdanau")
    source = torch.tensor([[4, 5, 6, EOS]])
    [tokens] = network.translate(source, 1)
    limit = 4 * 2 + 10  # the decoding limit for a 4-subword source
    sequence = tokens + [EOS] if len(tokens) < limit else tokens
    encoded = network.encode(source)
    state, previous, stepped = None, torch.tensor([BOS]), 0.0
    for token in sequence:
        log_probs, state = network.step(previous, state, encoded)
        assert int(log_probs.argmax()) == token  # greedy: the likeliest at every step
        stepped += float(log_probs[0, token].detach())
        previous = torch.tensor([token])
    assert stepped == pytest.approx(sequence_log_prob(network, source, sequence), abs=1e-4)


def test_reverse_padded_reverses_each_row_within_its_length_and_leaves_padding():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])[..., None]
    flipped = reverse_padded(x, torch.tensor([3, 2]))
    assert flipped[..., 0].tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]
    assert torch.equal(reverse_padded(flipped, torch.tensor([3, 2])), x)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_attention_has_one_weight_per_source_position_and_never_attends_to_padding(attention):
    network = translator(attention)
    sources = torch.tensor([[4, 5, 6, 7, EOS], [8, EOS, PAD, PAD, PAD]])
    encoded = network.encode(sources)
    weights = network.attention_weights(torch.randn(2, 6, 8), encoded)
    assert weights.shape == (2, 6, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 6))
    assert torch.all(weights[1, :, 2:] == 0)  # exactly zero on the padding
    assert torch.all(weights[1, :, :2] > 0)


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_a_sentence_is_encoded_scored_and_translated_the_same_alone_or_padded(attention):
    network = translator(attention, seed=3)
    alone = torch.tensor([[8, 9, EOS]])
    padded = torch.tensor([[4, 5, 6, 7, 8, 9, EOS], [8, 9, EOS, PAD, PAD, PAD, PAD]])
    target = torch.tensor([[4, 5, EOS]])
    one = network(Batch(inputs=alone, targets=target))
    both = network(Batch(inputs=padded, targets=torch.cat([target, target])))
    assert torch.allclose(one[0], both[1], atol=1e-5)
    assert network.translate(alone, 3) == network.translate(padded, 3)[1:]


def test_eval_batches_asking_for_a_beam_are_decoded_and_training_batches_are_not():
    network = translator()
    batch = Batch(inputs=torch.tensor([[4, EOS]]), targets=torch.tensor([[5, EOS]]),
                  extra={"beam": 2})
    assert isinstance(network.train()(batch), torch.Tensor)
    decoded = network.eval()(batch)
    assert decoded.logits.shape == (1, 2, 7) and len(decoded.tokens) == 1
