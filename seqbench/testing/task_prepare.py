"""Task checks on `prepare()`: the real default dataset and every option, prepared as
`seqbench run` prepares them (offline), repeatably and without touching global state.

Every run of every cell prepares its own data; sweeps reuse prepared data across trials
that agree on the options `prepare()` read. So preparing twice must give the same data,
must not reseed or draw from the global generators (that would tie the data to the run's
seed, or the model's initial weights to the data), and every option it reads must change
what it prepares.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqbench.contracts import PluginContractError, TaskData
from seqbench.errors import SeqbenchError
from seqbench.params import Param
from seqbench.testing.cell_probe import other_value
from seqbench.testing.kit import CheckSkipped, expect, where
from seqbench.testing.task_data import (
    check_batches,
    check_input_size,
    check_shuffle_follows_seed,
    check_splits_disjoint,
    check_splits_nonempty,
    check_targets_follow_inputs,
)
from seqbench.testing.task_model import check_loss_finite, check_padding_ignored
from seqbench.testing.task_subject import (
    BATCH_SIZE,
    SPLITS,
    TaskSubject,
    example_hashes,
    expect_declarations,
    outputs_of,
)

#: What `check_default_dataset` and `check_choices` repeat on real data: the checks that
#: look at the data itself, not at the declarations or the check case.
DATA_CHECKS = (check_splits_nonempty, check_batches, check_shuffle_follows_seed,
               check_splits_disjoint, check_input_size, check_targets_follow_inputs,
               check_loss_finite, check_padding_ignored)


def _data_checks(subject: TaskSubject, label: str) -> None:
    """The data checks on `subject`; one that does not apply here (no padding) is passed."""
    expect_declarations(subject.task)  # unlabelled: the same root cause as everywhere else
    for check in DATA_CHECKS:
        try:
            with where(f"{label} ({check.__name__})"):
                check(subject)
        except CheckSkipped:
            continue


def check_default_dataset(subject: TaskSubject) -> None:
    """The check case is a few hand-made examples; users run the default dataset. Split
    leaks, wrong shapes and a hard-coded `input_size` live in the real data's code path."""
    _data_checks(subject.real, f"the default dataset '{subject.task.default_dataset}'")


def check_choices(subject: TaskSubject) -> None:
    """Every value of every `choices` parameter builds different data or modules (pooling,
    feature sets), so each is prepared on the default dataset and checked like the default.
    A value the default dataset refuses with a one-line error is left out, as a user would
    see it refused."""
    task, dataset = subject.task, subject.task.default_dataset
    variants = [{p.name: value} for p in task.params if p.choices
                for value in p.choices if value != p.default]
    if not variants:
        raise CheckSkipped(f"task '{task.name}' declares no parameter with choices")
    refused = []
    for params in variants:
        label = ", ".join(f"{k}={v!r}" for k, v in params.items())
        try:
            variant = subject.offline(dataset, params)
        except CheckSkipped as skipped:
            refused.append(str(skipped))
            continue
        _data_checks(variant, f"'{dataset}' with {label}")
    if len(refused) == len(variants):
        raise CheckSkipped("; ".join(refused))


def _digest(*tensors: Any) -> str:
    digest = hashlib.sha256()
    for value in tensors:
        digest.update(repr(value).encode() if not isinstance(value, torch.Tensor) else
                      value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def fingerprint(subject: TaskSubject, data: TaskData, params: Mapping[str, Any]) -> dict:
    """What the data, and the probe model built on it, look like: `data` (sizes, counts and
    the first two batches of every split), `model` (weights and structure at seed 0) and
    `probe` (the model's loss and statistics on the first training batch)."""
    batches = {split: [example_hashes(batch) for batch, _ in zip(
        data.batches(split, BATCH_SIZE), range(2))] for split in SPLITS}
    facts = (data.input_size, data.split_sizes(),
             [data.num_batches(split, BATCH_SIZE) for split in SPLITS], batches)
    model = subject.model(data, params).eval()
    batch = next(iter(data.batches("train", BATCH_SIZE)))
    with torch.no_grad():
        outputs = outputs_of(model, batch)
        probe = (data.loss(outputs, batch), *data.statistics(outputs, batch).values())
    return {"data": _digest(facts), "model": _digest(repr(model), *model.state_dict().values()),
            "probe": _digest(*probe)}


def _rng_states() -> tuple:
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


@contextmanager
def _global_generators_kept():
    """Restore the global generators after the block: the kit reseeds them on purpose."""
    kept = _rng_states()
    try:
        yield
    finally:
        torch.set_rng_state(kept[0])
        np.random.set_state(kept[1])
        random.setstate(kept[2])


def _seed_globally(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def check_prepare_repeatable(subject: TaskSubject) -> None:
    """Two `prepare()` calls with the same settings, under different global seeds, give the
    same data: a split or sample drawn from an unseeded (or global) generator makes each
    run, and each cell, train and test on other examples."""
    dataset, params = subject.task.default_dataset, subject.params
    prints = []
    with _global_generators_kept():
        for seed in (1, 2):
            _seed_globally(seed)
            prints.append(fingerprint(subject, subject.prepare_offline(dataset, params), params))
    differ = [part for part in prints[0] if prints[0][part] != prints[1][part]]
    expect(not differ, f"prepare('{dataset}') twice with the same settings to give the same "
           "data", f"other {' and '.join(differ)}: a split or sample drawn without a seed")


def _changed(before: tuple) -> list[str]:
    after = _rng_states()
    names = []
    if not torch.equal(before[0], after[0]):
        names.append("torch's")
    if not all(np.array_equal(a, b) for a, b in zip(before[1], after[1])):
        names.append("numpy's")
    if before[2] != after[2]:
        names.append("random's")
    return names


#: The global seed `check_rng_untouched` sets first: a task reseeding with the value the
#: generators already had (the last shuffle's seed, say) would change nothing to see.
UNLIKELY_SEED = 914_237


def check_rng_untouched(subject: TaskSubject) -> None:
    """`prepare()` and `batches()` leave the global torch, numpy and `random` generators as
    they were. The core seeds them for the run; a task that reseeds them gives every cell
    and seed the same initial weights and dropout masks, and one that draws from them ties
    its data to the run's seed."""
    dataset, params = subject.task.default_dataset, subject.params
    with _global_generators_kept():
        _seed_globally(UNLIKELY_SEED)
        before = _rng_states()
        data = subject.prepare_offline(dataset, params)
        changed = _changed(before)
        expect(not changed, "prepare() to leave the global torch, numpy and random generators "
               "as they were", f"{' and '.join(changed)} changed: prepare() reseeds or draws "
               "from a global generator (use np.random.default_rng(seed) or a torch.Generator)")
        _seed_globally(UNLIKELY_SEED)
        before = _rng_states()
        for split in SPLITS:
            for seed in (None, 1):
                for _ in data.batches(split, BATCH_SIZE, seed=seed):
                    pass
        changed = _changed(before)
    expect(not changed, "batches() to leave the global torch, numpy and random generators as "
           "they were", f"{' and '.join(changed)} changed: batches() reseeds or draws from a "
           "global generator (shuffle with np.random.default_rng(seed))")


def _values(param: Param) -> list[Any]:
    """The non-default values of a task option the kit tries: every choice, else one."""
    if param.choices is not None:
        return [value for value in param.choices if value != param.default]
    value = other_value(param)
    return [] if value is None else [value]


def _variant(subject: TaskSubject, params: Mapping[str, Any],
             cache_dir: Path | None = None) -> tuple[dict, set[str]]:
    """The fingerprint of the default dataset prepared with `params`, and the options
    `prepare()` read; a `SeqbenchError` (a value this dataset or the probe refuses) is a
    skip, as a user would see the value refused."""
    from seqbench.params import ReadRecorder

    recorder = ReadRecorder(params)
    data = subject.prepare_offline(subject.task.default_dataset, recorder, cache_dir)
    try:
        return fingerprint(subject, data, params), recorder.read
    except PluginContractError:
        raise
    except SeqbenchError as exc:
        raise CheckSkipped(f"{dict(params)} is refused: {exc}") from exc


def check_options_matter(subject: TaskSubject) -> None:
    """Each value of each task option, on the default dataset. An option `prepare()` does
    not read declares that the data does not depend on it, so the data must not change.
    One it reads may change the data, the model or the loss, or be inert on this dataset;
    but the data prepared after the default's (the task's cache warm) must equal the data
    prepared from an empty cache. Sweeps reuse prepared data across trials that agree on
    what `prepare()` read: a cache keyed without the option (every trial trains on the
    default's data) or an option read later, outside `prepare()`, corrupts them. An option
    read only when the cache misses (the cache keyed by the dataset alone) is caught by
    preparing it once more from an empty cache."""
    task, dataset = subject.task, subject.task.default_dataset
    variants = [(p, value) for p in task.params for value in _values(p)]
    if not variants:
        raise CheckSkipped(f"task '{task.name}' declares no option the kit can vary")
    base = fingerprint(subject, subject.real.data, subject.params)
    refused = []
    for param, value in variants:
        params, label = {**subject.params, param.name: value}, f"task option {param.name}={value!r}"
        try:
            prints, read = _variant(subject, params)
            if param.name not in read:
                with tempfile.TemporaryDirectory() as empty:
                    _, fresh_read = _variant(subject, params, Path(empty))
                expect(param.name not in fresh_read, f"{label} to be read by prepare() whatever "
                       "its cache holds", "read from an empty cache but not after the "
                       "default's (cache warm): the cache key leaves the option out, and the "
                       "default's data comes back")
                expect(prints["data"] == base["data"], f"{label}, which prepare() does not read, "
                       f"to leave the prepared data of '{dataset}' unchanged", "other data: the "
                       "option is read after prepare() returned, where sweeps cannot see it")
            elif prints == base:  # inert here, or a cache handing back the default's data?
                with tempfile.TemporaryDirectory() as empty:
                    fresh, _ = _variant(subject, params, Path(empty))
                expect(fresh == base, f"{label}, which prepare() reads, to give the same data "
                       "prepared after the default's (cache warm) as from an empty cache",
                       "the default's data from the warm cache and other data from an empty "
                       "one: the cache key leaves the option out")
        except CheckSkipped as skipped:
            refused.append(str(skipped))
    if len(refused) == len(variants):
        raise CheckSkipped("; ".join(refused))
