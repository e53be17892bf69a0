"""Task checks on what the model's outputs turn into: loss, statistics, metrics, item
scores, and the files a task writes.

They feed the task a random probe model's outputs (see `task_subject`), and, to test
the metrics' declared directions, outputs fitted to the task's own loss.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from seqbench.contracts import Batch
from seqbench.errors import SeqbenchError
from seqbench.params import resolve
from seqbench.testing.kit import CheckSkipped, expect
from seqbench.testing.task_subject import (
    BATCH_SIZE,
    SPLITS,
    TaskSubject,
    outputs_of,
    split_metrics,
)

#: Adam steps `check_learns` allows for halving the loss on two batches.
LEARN_STEPS = 200
#: Adam steps fitting outputs to the loss in `check_metric_directions`.
FIT_STEPS = 100


def check_loss_finite(subject: TaskSubject) -> None:
    model = subject.model().train()
    batch = subject.first_batch("train")
    loss = subject.data.loss(outputs_of(model, batch), batch)
    expect(isinstance(loss, torch.Tensor) and loss.dim() == 0,
           "loss() to return a 0-d tensor", repr(getattr(loss, "shape", loss)))
    expect(torch.isfinite(loss), "a finite loss on a random model", f"{float(loss.detach())}")
    loss.backward()
    bad = [name for name, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    expect(not bad, "finite gradients of the loss", f"non-finite for {bad}")


def _padded(batch: Batch, composes: bool) -> Batch:
    """`batch` as if it held a sequence twice as long: as many steps again, masked out and
    filled with the batch's own padding (what each per-step tensor holds at a masked step:
    zeros, a PAD id), so every sequence ends in more padding, whatever its length.

    The mask marks the inputs' steps, or, for a task that composes cells, possibly the
    targets' (a decoder's outputs, one per target position): the tensors with its shape
    along that axis get the padding; a composed network's other sequence is left alone."""
    shape = tuple(batch.mask.shape)
    row, step = (~batch.mask).nonzero()[0].tolist()
    on_targets = composes and tuple(batch.targets.shape[:2]) == shape

    def longer(value: Any) -> Any:
        if not (isinstance(value, torch.Tensor) and value.dim() >= 2
                and tuple(value.shape[:2]) == shape):
            return value
        return torch.cat([value, value[row, step].expand_as(value)], 1)

    return Batch(inputs=batch.inputs if on_targets else longer(batch.inputs),
                 targets=longer(batch.targets) if on_targets or not composes else batch.targets,
                 mask=torch.cat([batch.mask, torch.zeros_like(batch.mask)], 1),
                 extra={key: longer(value) for key, value in batch.extra.items()})


def _agree(a: Any, b: Any) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-5, atol=1e-6)


def _padded_batch(subject: TaskSubject) -> Batch | None:
    """The first batch with a padded step, in the subject's batch size, else in batches of
    BATCH_SIZE (a check case read one example at a time pads nothing); a size the data
    refuses (a stream too short for it) is passed over."""
    for size in dict.fromkeys((subject.batch_size, BATCH_SIZE)):
        try:
            for split in SPLITS:
                for batch in subject.data.batches(split, size):
                    if batch.mask is not None and not batch.mask.all():
                        return batch
        except SeqbenchError:
            continue
    return None


def check_padding_ignored(subject: TaskSubject) -> None:
    """Padded steps (`batch.mask` False) carry no information: adding more of them must
    change neither the statistics nor the loss. A read-out of the last *padded* step, or a
    loss averaged over padding, passes every shape check and quietly favours the cells
    whose outputs drift least over the zeros."""
    batch = _padded_batch(subject)
    if batch is None:
        raise CheckSkipped("no batch has a padded step (batch.mask False)")
    data, model = subject.data, subject.model().eval()
    padded = _padded(batch, subject.task.composes_cells)
    with torch.no_grad():
        plain, longer = outputs_of(model, batch), outputs_of(model, padded)
        stats, padded_stats = data.statistics(plain, batch), data.statistics(longer, padded)
        loss, padded_loss = data.loss(plain, batch), data.loss(longer, padded)
    moved = sorted(key for key in stats if not _agree(stats[key], padded_stats[key]))
    expect(not moved, "the statistics to stay the same when masked padding steps are added",
           f"{moved} changed: a prediction read from a padded step (read the last real step "
           "with batch.mask)")
    expect(_agree(loss, padded_loss), "the loss to stay the same when masked padding steps "
           "are added", f"{float(loss):.6g} became {float(padded_loss):.6g}: the loss "
           "averages over padded steps")


def check_metrics_declared(subject: TaskSubject) -> None:
    task, data = subject.task, subject.data
    model = subject.model().eval()
    with torch.no_grad():
        metrics = split_metrics(data, "valid", subject.batch_size,
                                lambda batch: outputs_of(model, batch))
    primary = task.primary(subject.dataset)
    wanted = [primary] + ([task.select_by[0]] if task.select_by else [])
    for name in wanted:
        expect(name in metrics, f"metric '{name}' among metrics()", f"{sorted(metrics)}")
        expect(math.isfinite(float(metrics[name])),
               f"a finite '{name}' on a random model", f"{metrics[name]}")
    for baseline, values in data.baselines().items():
        unknown = sorted(set(values) - set(metrics))
        expect(not unknown, f"baseline '{baseline}' to report metrics() names",
               f"{unknown} (metrics: {sorted(metrics)})")


def check_metrics_case(subject: TaskSubject) -> None:
    case = subject.case
    if case is None:
        raise CheckSkipped(f"task '{subject.task.name}' supplies no Task.check_case()")
    with torch.no_grad():
        metrics = split_metrics(case.data, case.split, case.batch_size, case.predict)
    for name, value in case.expected.items():
        expect(name in metrics, f"metric '{name}' on the check case", f"{sorted(metrics)}")
        expect(math.isclose(float(metrics[name]), value, rel_tol=1e-4, abs_tol=1e-6),
               f"{name}={value:.6g} on the task's check case", f"{name}={metrics[name]:.6g}")


def _fitted(subject: TaskSubject, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    """`outputs` moved by Adam to minimise the task's loss on `batch`: a near-perfect
    predictor in the task's own output space, whatever that space is."""
    fitted = outputs.detach().clone().requires_grad_()
    optimizer = torch.optim.Adam([fitted], lr=0.1)
    for _ in range(FIT_STEPS):
        optimizer.zero_grad()
        subject.data.loss(fitted, batch).backward()
        optimizer.step()
    return fitted.detach()


def check_metric_directions(subject: TaskSubject) -> None:
    """Outputs fitted to the task's loss must score better, in each declared direction
    (`Task.direction` for the primary metric, `select_by`'s for the selection metric),
    than a random model's. Accuracy declared "minimize" or NLL "maximize" makes early
    stopping, the best epoch and the sweep pick the worst model, and tables rank cells
    backwards."""
    task, model = subject.task, subject.model().eval()
    split = subject.case.split if subject.from_case else "valid"
    batch = subject.first_batch(split)
    with torch.no_grad():
        probe = outputs_of(model, batch)
    if not (isinstance(probe, torch.Tensor) and probe.dtype.is_floating_point):
        raise CheckSkipped("the outputs are not one float tensor the kit can fit")
    wanted = {task.primary(subject.dataset): task.direction, **dict([task.select_by] if
                                                                    task.select_by else [])}

    def scores(fit: bool) -> dict[str, float]:
        def outputs(batch: Batch) -> torch.Tensor:
            with torch.no_grad():
                plain = outputs_of(model, batch)
            return _fitted(subject, plain, batch) if fit else plain

        return split_metrics(subject.data, split, subject.batch_size, outputs)

    fitted, random = scores(fit=True), scores(fit=False)
    for name, direction in wanted.items():
        better = (fitted[name] > random[name] if direction == "maximize"
                  else fitted[name] < random[name])
        expect(better or fitted[name] == random[name],
               f"'{name}', declared to {direction}, to be better for outputs fitted to the loss "
               f"than for a random model's", f"{name}={float(fitted[name]):.4g} fitted and "
               f"{float(random[name]):.4g} random: the declared direction is the wrong way round")


def check_item_scores(subject: TaskSubject) -> None:
    """`item_scores` gives one `(value, weight)` per test item, in an order that does not
    depend on the batch size (each cell is tested at its own tuned one), and sum(value) /
    sum(weight) is the primary metric: reports pair cells item by item on them."""
    data, model = subject.data, subject.model().eval()
    primary = subject.task.primary(subject.dataset)
    readings = []
    for size in (subject.batch_size, subject.batch_size + 1):
        values, weights = [], []
        with torch.no_grad():
            for batch in data.batches("test", size):
                scores = data.item_scores(outputs_of(model, batch), batch)
                if scores is None:
                    raise CheckSkipped("item_scores() returns None (the primary metric is not "
                                       "itemised)")
                rows = batch.inputs.shape[0]
                shapes = [tuple(getattr(part, "shape", ())) for part in scores]
                expect(shapes == [(rows,), (rows,)], f"item_scores() to return (value, weight) "
                       f"of shape ({rows},), one per test item of the batch", f"shapes "
                       f"{shapes[0]} and {shapes[1]}: not one value per item")
                values.append(scores[0].double())
                weights.append(scores[1].double())
        readings.append((torch.cat(values), torch.cat(weights)))
        metric = split_metrics(data, "test", size, lambda batch: outputs_of(model, batch))[primary]
        ratio = float(readings[-1][0].sum() / readings[-1][1].sum())
        expect(math.isclose(ratio, float(metric), rel_tol=1e-4, abs_tol=1e-6),
               f"sum(value) / sum(weight) of item_scores() over the test split to equal "
               f"'{primary}' ({float(metric):.6g})", f"{ratio:.6g}")
    (first, _), (second, _) = readings
    expect(first.shape == second.shape and torch.allclose(first, second),
           f"the same test items in the same order in batches of {subject.batch_size} and "
           f"{subject.batch_size + 1}", "other items: the items depend on the batch size")


def _files_written(what: str, written: Any, out_dir: Path) -> None:
    expect(isinstance(written, list), f"{what} to return a list of paths",
           type(written).__name__)
    for path in map(Path, written):
        expect(path.is_file() and path.stat().st_size > 0,
               f"every path {what} returns to be a non-empty file", f"'{path}'" +
               (" (empty)" if path.is_file() else " (missing)"))
        expect(path.resolve().is_relative_to(out_dir.resolve()),
               f"the files of {what} inside {out_dir}", f"'{path}'")


def check_generate(subject: TaskSubject) -> None:
    task = subject.task
    if task.generate is None:
        raise CheckSkipped(f"task '{task.name}' does not declare generate()")
    options = resolve(task.generate_params, {}, f"generate for task '{task.name}'")
    model = subject.model().eval()
    with tempfile.TemporaryDirectory() as folder:
        out_dir = Path(folder) / "generated"
        written = task.generate(model, subject.data, out_dir, options)
        expect(written, "generate() to write at least one file", "an empty list")
        _files_written("generate()", written, out_dir)


def check_artifacts(subject: TaskSubject) -> None:
    model = subject.model().eval()
    with tempfile.TemporaryDirectory() as folder:
        _files_written("artifacts()", subject.data.artifacts(model, Path(folder)), Path(folder))


def check_learns(subject: TaskSubject) -> None:
    """Optional (`learn=True`): the random model must overfit the first two training
    batches (the check case's, normally). A loss that cannot fall points to a head whose
    outputs do not reach the loss, targets misaligned with inputs, or a detached graph."""
    model = subject.model().train()
    batches = list(subject.data.batches("train", subject.batch_size))[:2]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)

    def total() -> torch.Tensor:
        return sum(subject.data.loss(outputs_of(model, batch), batch) for batch in batches)

    start = float(total().detach())
    for _ in range(LEARN_STEPS):
        optimizer.zero_grad()
        total().backward()
        optimizer.step()
    end = float(total().detach())
    expect(end < start / 2, f"the training loss on 2 batches to halve in {LEARN_STEPS} Adam "
           "steps", f"{start:.4g} -> {end:.4g}")
