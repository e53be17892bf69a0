"""The encoder-decoder with attention that the translation task builds around the run's cell.

Every recurrent part is a fresh stack of the run's cell from the core's factory, so LSTM,
GRU, RNN or a plugin is compared inside the same model:

* encoder: two stacks read the source embeddings, one forwards and one backwards, and
  their outputs are concatenated per position (Bahdanau et al. 2015's bidirectional
  encoder; each direction is a `layers`-deep stack of its own). The backward stack reads
  each sentence reversed within its own length, so padding never reaches a real position;
* decoder: one stack reads the previous target subword's embedding and a summary of the
  source (the mean of the encoder outputs, projected), as Cho et al. (2014)'s decoder
  conditions every step on the source;
* attention over the encoder outputs, queried by the decoder's output at each step, with
  the score selectable: Bahdanau et al. (2015)'s additive score v^T tanh(W q + U m) or
  Luong et al. (2015)'s "general" score q^T W m; padding gets weight zero. The context
  and the decoder output make the attentional vector tanh(W_c [c; q]) that the softmax
  reads (Luong et al. 2015, their eq. 5).

Attention is computed after the decoder step (Luong's placement, as OpenNMT's "mlp" and
"general" attention), so with teacher forcing the decoder stack reads the whole target
sequence in one call, which is what makes a CPU epoch affordable. The decoder starts
from the cell's own zero state: a cell's state layout is its own (`seqbench.Cell`), so
no encoder state is copied into it; the source reaches the decoder through the summary
and the attention.

`forward(batch)` returns the next-subword logits `[B, T, V]` under teacher forcing. A
validation or test batch in eval mode also asks for decoding (`Batch.extra["beam"]`: the
beam width, 1 = greedy), and then the network returns `Translations`: the same logits
and the decoded subword ids of every sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seqbench import Batch
from seqbench_tasks.translation.search import beam_search, state_batch_dims
from seqbench_tasks.translation.vocab import BOS, PAD

#: Longest decoded output, as a multiple of the source sentence's length plus a margin
#: (Multi30k's translations are about as long as their sources).
MAX_LENGTH_RATIO, MAX_LENGTH_MARGIN = 2, 10


@dataclass
class Translations:
    """What the network returns for a batch it was asked to decode."""

    logits: torch.Tensor
    tokens: list[list[int]]


@dataclass
class Source:
    """The encoded source sentences: per-position memory `[B, S, 2H]`, the attention's keys
    over it, the real-position mask `[B, S]` and the summary `[B, H]` the decoder reads."""

    memory: torch.Tensor
    keys: torch.Tensor
    mask: torch.Tensor
    summary: torch.Tensor

    def rows(self, index: torch.Tensor) -> Source:
        """These sentences at `index` (for a beam: each repeated once per hypothesis)."""
        return Source(*(part.index_select(0, index) for part in
                        (self.memory, self.keys, self.mask, self.summary)))


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): score(q, m) = v^T tanh(W q + U m)."""

    def __init__(self, query_size: int, memory_size: int, width: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, width, bias=False)
        self.key = nn.Linear(memory_size, width)
        self.score = nn.Linear(width, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Scores `[B, T, S]` of queries `[B, T, Q]` against keys `[B, S, W]`."""
        return self.score(torch.tanh(self.query(query).unsqueeze(2)
                                     + keys.unsqueeze(1))).squeeze(-1)


class GeneralAttention(nn.Module):
    """Luong et al. (2015), "general": score(q, m) = q^T W m."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return query @ keys.transpose(1, 2)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x[B, T, F]` with the first `lengths[b]` steps of each row reversed and its padding
    left where it is, so a stack reading the result meets every real step before any pad."""
    steps = torch.arange(x.shape[1], device=x.device)
    last = lengths[:, None] - 1
    index = torch.where(steps < lengths[:, None], last - steps, steps)
    return x.gather(1, index[..., None].expand_as(x))


class Translator(nn.Module):
    """Bidirectional encoder, attention and decoder, every stack from `cells`."""

    def __init__(self, cells: Callable[[int], nn.Module], hidden_size: int,
                 source_vocab_size: int, target_vocab_size: int, emb_size: int,
                 attention: str, dropout: float, length_penalty: float) -> None:
        super().__init__()
        memory = 2 * hidden_size
        self.source_embedding = nn.Embedding(source_vocab_size, emb_size, padding_idx=PAD)
        self.forwards, self.backwards = cells(emb_size), cells(emb_size)
        self.summarise = nn.Linear(memory, hidden_size)
        self.target_embedding = nn.Embedding(target_vocab_size, emb_size, padding_idx=PAD)
        self.decoder_width = emb_size + hidden_size
        self.decoder = cells(self.decoder_width)
        scores = {"bahdanau": lambda: AdditiveAttention(hidden_size, memory, hidden_size),
                  "luong": lambda: GeneralAttention(hidden_size, memory)}
        self.attention = scores[attention]()
        self.combine = nn.Linear(memory + hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, target_vocab_size)
        self.dropout = nn.Dropout(dropout)
        self.length_penalty = length_penalty
        #: Where each tensor of the decoder's state keeps the batch (found on first use).
        self._state_dims: Any = None

    # ---- encoding ----
    def encode(self, source: torch.Tensor) -> Source:
        mask = source != PAD
        lengths = mask.sum(1)
        embedded = self.dropout(self.source_embedding(source))
        ahead, _ = self.forwards(embedded)
        behind, _ = self.backwards(reverse_padded(embedded, lengths))
        memory = torch.cat([ahead, reverse_padded(behind, lengths)], -1)
        real = mask[..., None].to(memory.dtype)
        mean = (memory * real).sum(1) / real.sum(1).clamp(min=1)
        return Source(memory, self.attention.keys(memory), mask,
                      torch.tanh(self.summarise(mean)))

    # ---- attention and the output layer ----
    def attention_weights(self, query: torch.Tensor, source: Source) -> torch.Tensor:
        """`[B, T, S]` weights over the source positions; padding gets exactly zero."""
        scores = self.attention(query, source.keys)
        return scores.masked_fill(~source.mask[:, None, :], float("-inf")).softmax(-1)

    def logits(self, query: torch.Tensor, source: Source) -> torch.Tensor:
        context = self.attention_weights(query, source) @ source.memory
        attentional = torch.tanh(self.combine(torch.cat([context, query], -1)))
        return self.output(self.dropout(attentional))

    def decoder_inputs(self, previous: torch.Tensor, source: Source) -> torch.Tensor:
        """The decoder's input at each step: the previous subword and the source summary."""
        embedded = self.dropout(self.target_embedding(previous))
        summary = source.summary[:, None, :].expand(-1, previous.shape[1], -1)
        return torch.cat([embedded, summary], -1)

    # ---- training: teacher forcing ----
    def teacher_forced(self, targets: torch.Tensor, source: Source) -> torch.Tensor:
        """Logits `[B, T, V]` for every target position, each step reading the reference's
        previous subword (`<s>` first): position t never sees target t or later."""
        previous = torch.cat([targets.new_full((targets.shape[0], 1), BOS), targets[:, :-1]], 1)
        outputs, _ = self.decoder(self.decoder_inputs(previous, source))
        return self.logits(outputs, source)

    def forward(self, batch: Batch) -> torch.Tensor | Translations:
        source = self.encode(batch.inputs)
        logits = self.teacher_forced(batch.targets, source)
        beam = batch.extra.get("beam")
        if beam and not self.training:
            return Translations(logits, self.search(source, beam))
        return logits

    # ---- decoding ----
    def step(self, previous: torch.Tensor, state: Any, source: Source
             ) -> tuple[torch.Tensor, Any]:
        """Log-probabilities `[N, V]` of the next subword after `previous[N]`, and the state."""
        outputs, state = self.decoder(self.decoder_inputs(previous[:, None], source), state)
        return F.log_softmax(self.logits(outputs, source)[:, 0].float(), -1), state

    def search(self, source: Source, beam: int) -> list[list[int]]:
        """The decoded subword ids of every sentence (`</s>` not included)."""
        with torch.no_grad():
            if self._state_dims is None:
                self._state_dims = state_batch_dims(self.decoder, self.decoder_width,
                                                    source.memory)
            limits = source.mask.sum(1) * MAX_LENGTH_RATIO + MAX_LENGTH_MARGIN
            return beam_search(self.step, source, beam, limits, self.length_penalty,
                               self._state_dims)

    def translate(self, sources: torch.Tensor, beam: int) -> list[list[int]]:
        """Decoded subword ids for padded source ids `[B, S]` (eval mode, no gradients)."""
        with torch.no_grad():
            return self.search(self.encode(sources), beam)
