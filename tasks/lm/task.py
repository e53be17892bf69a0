"""Language modelling with the standard protocol (Zaremba et al. 2014).

The training split is one token stream cut into `batch_size` contiguous rows; windows of
`bptt` tokens are fed in order and the core carries the cell state from one window to the
next, detached (truncated BPTT, `Task.carry_state`). Validation and test walk their whole
stream as a single row the same way, so perplexity is exp(total NLL / tokens predicted) over
every token after the first: exact, not an average of window averages. The softmax is one
fused cross-entropy over the whole window.

Evaluation windows are `EVAL_WINDOW` tokens whatever `bptt` a configuration trains with.
With the state carried, the window length changes no metric, and a fixed one makes the test
windows the same items for every cell and configuration, so reports compare cells window by
window (`item_scores`) instead of by seed means.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from seqbench import (
    Batch,
    DataContext,
    Param,
    SeqbenchError,
    Task,
    TaskData,
    batch_count,
    batch_rows,
)
from seqbench.params import MAX_SEED
from seqbench.userdata import UserSource, refuse_foreign_options
from seqbench_tasks.lm.corpus import CORPORA, SPLITS, Streams, load_streams, restored_streams
from seqbench_tasks.lm.ngram import kneser_ney
from seqbench_tasks.lm.text import LEVELS, load_text


#: Tokens per validation / test window: 112 windows in Tiny Shakespeare's test split (its
#: paired tests' items), 165 in PTB's (none written: perplexity is no ratio of sums).
EVAL_WINDOW = 500


def batchify(ids: np.ndarray, rows: int) -> np.ndarray:
    """`rows` contiguous streams `[rows, N // rows]` (the last N mod rows tokens are dropped)."""
    length = len(ids) // rows
    return ids[: rows * length].reshape(rows, length)


class LanguageData(TaskData):
    def __init__(self, dataset: str, streams: Streams, params: Mapping[str, Any],
                 source: UserSource | None = None, primary: str = "ppl",
                 eval_window: int = EVAL_WINDOW) -> None:
        """`dataset` names the data in messages; `source` is set for the user's own text
        (split record, notes, cache); `primary` is the task's primary metric for it;
        `eval_window` is shortened only by tests that need several windows in a tiny stream."""
        self.dataset, self.streams, self.source, self.primary = dataset, streams, source, primary
        self.bptt, self.eval_window = params["bptt"], eval_window
        self.vocab_size = len(streams.vocab)
        self.input_size = params["emb_size"]
        for split in ("valid", "test"):  # one window at least, before any training starts
            if len(streams.ids[split]):  # (a restored vocabulary has no token streams)
                self._grid(split, 1)

    def describe(self) -> dict[str, Any]:
        return self.source.facts() if self.source else {}

    def artifacts(self, model, run_dir: Path) -> list[Path]:
        """The user's text: the split record and the tokenizer, so the vocabulary a model
        was trained with travels with it."""
        if self.source is None:
            return []
        tokenizer = run_dir / "tokenizer.json"
        tokenizer.write_text(self.streams.tokenizer)
        return [*self.source.write(run_dir), tokenizer]

    def split_sizes(self) -> dict[str, int]:
        return {split: len(ids) for split, ids in self.streams.ids.items()}

    def _grid(self, split: str, batch_size: int) -> np.ndarray:
        """Training reads `batch_size` parallel streams. Validation and test read the split as
        one stream (Zaremba et al. test with batch 1), so every token after the first is
        scored with the state carried from the start: nothing is dropped, no row restarts
        from a zero state, and the perplexity does not depend on the batch size a sweep
        happened to pick."""
        rows = batch_size if split == "train" else 1
        grid = batchify(self.streams.ids[split], rows)
        if grid.shape[1] <= self.bptt:
            raise SeqbenchError(
                f"{self.dataset} {split} has {len(self.streams.ids[split])} tokens: too few for "
                f"{rows} stream(s) of bptt={self.bptt} (each needs bptt + 1 tokens); lower "
                f"{'batch_size or ' if split == 'train' else ''}bptt."
            )
        return grid

    def _window(self, split: str) -> int:
        return self.bptt if split == "train" else self.eval_window

    def num_batches(self, split: str, batch_size: int) -> int:
        return batch_count(self._grid(split, batch_size).shape[1] - 1, self._window(split))

    def batches(self, split: str, batch_size: int, seed: int | None = None) -> Iterator[Batch]:
        """Windows of predicted positions in stream order (`bptt` of them when training,
        `eval_window` otherwise); the state carries between them, so the seed is not used."""
        import torch

        grid = torch.from_numpy(self._grid(split, batch_size))
        for steps in batch_rows(grid.shape[1] - 1, self._window(split)):
            start, end = int(steps[0]), int(steps[-1]) + 1
            yield Batch(inputs=grid[:, start:end], targets=grid[:, start + 1 : end + 1])

    def modules(self, hidden_size: int, params: Mapping[str, Any]):
        """Embedding encoder and softmax head, built together so tying them is one assignment."""
        import torch
        from torch import nn

        embedding = nn.Embedding(self.vocab_size, self.input_size)
        if params["init_range"]:
            nn.init.uniform_(embedding.weight, -params["init_range"], params["init_range"])
        linear = nn.Linear(hidden_size, self.vocab_size)
        if params["tie_weights"]:
            if hidden_size != self.input_size:
                raise SeqbenchError(f"tie_weights needs emb_size == hidden_size (got "
                                    f"{self.input_size} and {hidden_size}).")
            linear.weight = embedding.weight
        elif params["init_range"]:
            nn.init.uniform_(linear.weight, -params["init_range"], params["init_range"])
            nn.init.zeros_(linear.bias)
        if params["unigram_bias"]:
            with torch.no_grad():
                linear.bias.copy_(self.unigram_log_frequencies())
        return (nn.Sequential(embedding, nn.Dropout(params["emb_dropout"])),
                nn.Sequential(nn.Dropout(params["out_dropout"]), linear))

    def unigram_log_frequencies(self):
        """Log frequency of each token in the training stream (add-one smoothed)."""
        import torch

        counts = np.bincount(self.streams.ids["train"], minlength=self.vocab_size) + 1.0
        return torch.from_numpy(np.log(counts / counts.sum())).float()

    def baselines(self) -> dict[str, dict[str, float]]:
        """Count models scored on the tokens the network is scored on (every test token after
        the first): the training unigram distribution, a bigram interpolated with it, and
        interpolated modified Kneser-Ney of the order that fits validation best (`ngram.py`;
        named with its order, e.g. `kneser_ney_5gram`: PTB test perplexity 141.1, the
        published KN5's 141.2).

        Hand-written (a sparse count over token pairs) because the n-gram libraries of the
        field (KenLM, nltk.lm) are either a C++ build or far too slow for a 10k vocabulary;
        the bigram's weight is the one of a coarse grid that fits the validation stream best
        (Jelinek & Mercer 1980), never the test stream.
        """
        unigram = np.exp(self.unigram_log_frequencies().double().numpy())
        train, valid, test = (np.asarray(self.streams.ids[split], dtype=np.int64)
                              for split in SPLITS)
        pairs, counts = pair_counts(train, self.vocab_size)
        before = np.bincount(train[:-1], minlength=self.vocab_size)
        tuning, scoring = (self._bigram_parts(pairs, counts, before, stream, unigram)
                           for stream in (valid, test))
        weight = min(np.linspace(0.05, 0.95, 19), key=lambda w: _mixture_nll(*tuning, w))
        order, kneser_ney_nll = kneser_ney(train, valid, test, self.vocab_size,
                                           self.streams.level)
        return {name: self.metrics({"nll": nll, "tokens": 1})
                for name, nll in (("unigram", float(-np.log(scoring[2]).mean())),
                                  ("bigram", _mixture_nll(*scoring, weight)),
                                  (f"kneser_ney_{order}gram", kneser_ney_nll))}

    def _bigram_parts(self, pairs: np.ndarray, counts: np.ndarray, before: np.ndarray,
                      scored: np.ndarray, unigram: np.ndarray):
        """For each token of `scored[1:]`: P(token | previous) from the training pair codes
        (`previous * vocab + token`, sorted) and their counts, whether the previous token
        precedes anything in training (`before` counts that), and P_unigram(token)."""
        wanted = scored[:-1] * self.vocab_size + scored[1:]
        at = np.minimum(np.searchsorted(pairs, wanted), len(pairs) - 1)
        together = np.where(pairs[at] == wanted, counts[at], 0)
        previous = before[scored[:-1]]
        return together / np.maximum(previous, 1), previous > 0, unigram[scored[1:]]

    def loss(self, outputs, batch: Batch):
        import torch.nn.functional as F

        return F.cross_entropy(outputs.reshape(-1, self.vocab_size), batch.targets.reshape(-1))

    def statistics(self, outputs, batch: Batch):
        import torch
        import torch.nn.functional as F

        nll = F.cross_entropy(outputs.reshape(-1, self.vocab_size), batch.targets.reshape(-1),
                              reduction="sum")
        return {"nll": nll, "tokens": torch.tensor(batch.targets.numel())}

    def item_scores(self, outputs, batch: Batch):
        """Each test window's bits and its token count, where bits per character is the
        primary metric. Perplexity is not a ratio of sums, so its datasets have no items."""
        if self.primary != "bpc":
            return None
        nll = self.statistics(outputs, batch)["nll"] / math.log(2)
        return nll.reshape(1), batch.targets.new_full((1,), batch.targets.numel())

    def metrics(self, totals: Mapping[str, Any]) -> dict[str, float]:
        per_token = totals["nll"] / totals["tokens"]
        result = {"nll": per_token, "ppl": math.exp(min(per_token, 700.0))}
        if self.streams.level == "char":
            result["bpc"] = per_token / math.log(2)
        return result


def pair_counts(stream: np.ndarray, vocab_size: int, chunk: int = 1 << 22
                ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes `previous * vocab_size + token` of consecutive tokens (sorted) and
    how often each occurs, counted a chunk at a time: the codes of a whole large corpus at
    once cost 8 bytes a token, and sorting them as much again."""
    codes, counts = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(stream) - 1, chunk):
        part = stream[start : start + chunk + 1]
        found, times = np.unique(part[:-1] * vocab_size + part[1:], return_counts=True)
        codes.append(found)
        counts.append(times)
    pairs, where = np.unique(np.concatenate(codes), return_inverse=True)
    return pairs, np.bincount(where, weights=np.concatenate(counts),
                              minlength=len(pairs)).astype(np.int64)


def _mixture_nll(conditional: np.ndarray, seen: np.ndarray, unigram: np.ndarray,
                 weight: float) -> float:
    """Mean NLL of weight * bigram + (1 - weight) * unigram; an unseen previous token backs
    off to the unigram alone."""
    return float(-np.log(np.where(seen, weight * conditional + (1 - weight) * unigram,
                                  unigram)).mean())


class LanguageModelTask(Task):
    name = "lm"
    summary = "Language modelling: next token over a carried stream, perplexity / bits per char"
    datasets = {**{name: f"{c.title}, {c.level} level" for name, c in CORPORA.items()},
                "text": "your text file or folder (--set path=FILE_OR_DIR [--set level=char|"
                        "word|bpe] [--set vocab_size=N])"}
    default_dataset = "ptb"
    primary_metric = "ppl"
    primary_metrics = {"shakespeare": "bpc"}
    direction = "minimize"
    carry_state = True
    #: Zaremba et al. (2014) "small": 2 x 200, bptt 20, batch 20, 13 epochs, SGD lr 1 halved
    #: after epoch 4, gradient norm clipped at 5. Their loss is summed over the 20 steps of a
    #: window; ours is the per-token mean (so perplexity and the loss agree), which scales
    #: the gradient by 1/20: lr 20 and clip 0.25 are the same optimisation.
    defaults = {"epochs": 13, "hidden_size": 200, "layers": 2, "batch_size": 20, "lr": 20.0,
                "optimizer": "sgd", "clip": 0.25, "lr_decay": 0.5, "lr_decay_start": 4,
                "patience": 0}
    params = (
        Param("bptt", int, 20, "tokens per truncated-BPTT window", low=2, high=10_000,
              search=(20, 70)),
        Param("emb_size", int, 200, "embedding width", low=1, high=16_384, log=True,
              search=(64, 512)),
        Param("tie_weights", bool, False, "share input and output embeddings (Press & Wolf "
              "2017); needs emb_size == hidden_size", tune=False),
        Param("emb_dropout", float, 0.0, "dropout on embeddings", low=0.0, high=0.9,
              search=(0.0, 0.5)),
        Param("out_dropout", float, 0.0, "dropout before the softmax", low=0.0, high=0.9,
              search=(0.0, 0.5)),
        Param("unigram_bias", bool, False, "start the softmax bias at the training unigram "
              "log-frequencies (off: Zaremba et al.'s zero bias, which the published PTB "
              "reproduction uses)", tune=False),
        Param("path", str, "", "your text file, or a folder with train.txt valid.txt "
              "test.txt or other .txt files (dataset 'text')", tune=False),
        Param("level", str, "char", "tokens of your text (dataset 'text'): characters, "
              "words, or byte-level BPE", choices=LEVELS, tune=False),
        Param("vocab_size", int, 0, "dataset 'text': BPE vocabulary (0 = 1000), or keep the "
              "N most frequent words (0 = all)", low=0, high=1_000_000, tune=False),
        Param("init_range", float, 0.1, "uniform init range of embeddings and softmax "
              "(Zaremba: 0.1; 0 = PyTorch default)", low=0.0, high=1.0, tune=False),
    )
    generate_params = (
        Param("prompt", str, "the", "text to start from (tokens outside the vocabulary "
              "become <unk>)"),
        Param("steps", int, 50, "tokens to sample", low=1, high=100_000),
        Param("temperature", float, 1.0, "divides the logits", low=1e-3, high=100.0),
        Param("top_k", int, 0, "sample among the k likeliest tokens (0 = all)", low=0),
        Param("seed", int, 0, "sampling seed", low=0, high=MAX_SEED),
        Param("num", int, 1, "number of samples", low=1, high=1000),
    )

    def prepare(self, dataset: str, context: DataContext, params: Mapping[str, Any]):
        refuse_foreign_options(dataset, params, self.params,
                               {"path": ("text",), "level": ("text",), "vocab_size": ("text",)})
        if dataset == "text":
            streams, source = load_text(params, context)
            return LanguageData(f"'{params['path']}' ({source.how})", streams, params, source)
        return LanguageData(dataset, load_streams(dataset, context), params,
                            primary=self.primary(dataset))

    def restore(self, dataset: str, params: Mapping[str, Any], run_dir: Path):
        """Your text's vocabulary from the run folder's tokenizer.json, so `generate` needs
        no corpus (the built-in corpora are loaded as for training)."""
        tokenizer = run_dir / "tokenizer.json"
        if dataset != "text" or not tokenizer.is_file():
            return None
        streams = restored_streams(tokenizer, params["level"])
        return LanguageData(f"the vocabulary of {run_dir}", streams, params)

    def check_case(self):
        """A hand-checkable token stream for the conformance kit (see `check.py`)."""
        from seqbench_tasks.lm.check import lm_check_case

        return lm_check_case()

    def generate(self, model, data: LanguageData, out_dir: Path, options: Mapping[str, Any]):
        import torch

        prompt = data.streams.encode(options["prompt"])
        if not prompt:
            raise SeqbenchError("the prompt is empty.")
        generator = torch.Generator().manual_seed(options["seed"])
        device = next(model.parameters()).device
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for number in range(1, options["num"] + 1):
            tokens = list(prompt)
            with torch.no_grad():
                logits, state = model(torch.tensor([tokens], device=device))
                for _ in range(options["steps"]):
                    scores = logits[0, -1].float().cpu() / options["temperature"]
                    if options["top_k"]:
                        kth = torch.topk(scores, min(options["top_k"], len(scores))).values[-1]
                        scores = scores.masked_fill(scores < kth, float("-inf"))
                    token = int(torch.multinomial(torch.softmax(scores, -1), 1,
                                                  generator=generator))
                    tokens.append(token)
                    logits, state = model(torch.tensor([[token]], device=device), state)
            text = data.streams.decode(tokens)
            path = out_dir / f"sample-{number}.txt"
            path.write_text(text + "\n")
            print(text)
            written.append(path)
        return written
