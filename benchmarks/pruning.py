"""What pruning buys: trial-epochs spent and best value found, median pruner against none.

Both sweeps search the same cell on the same task with the same seeded sampler, trial budget
and epoch cap; only the pruner differs. Trial-epochs are counted from the validation values
each trial reported (one per epoch it trained), so pruned and diverged trials count what
they really cost. Reports the saving as a fraction and both best validation values.

    python benchmarks/pruning.py [--task music] [--dataset bach] [--cell lstm]
                                 [--trials 16] [--epochs 40] [--pruner median]
                                 [--folds K]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import optuna

from seqbench.registry import get_task
from seqbench.sweeps import studies
from seqbench.sweeps.plan import SweepPlan
from seqbench.sweeps.runner import check_data
from seqbench.sweeps.search import search
from seqbench.sweeps.storage import open_storage


def sweep_cost(plan: SweepPlan, cell: str) -> tuple[int, float, int, float]:
    """Run the search only (no finals): (trial-epochs, best value, pruned trials, seconds)."""
    studies.check(plan)
    check_data(plan)
    studies.create(plan, cell)  # the protocol's first trial: the task's defaults
    started = time.perf_counter()
    search(plan, cell)
    seconds = time.perf_counter() - started
    study = optuna.load_study(study_name=plan.study_name(cell), storage=open_storage(plan.storage))
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    pruned = sum(t.state.name == "PRUNED" for t in study.trials)
    return epochs, study.best_value, pruned, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="music")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--pruner", default="median", choices=("median", "hyperband"))
    parser.add_argument("--folds", type=int, default=None,
                        help="validation folds per trial (default: the task's own)")
    args = parser.parse_args()
    dataset = args.dataset or get_task(args.task).default_dataset

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in (args.pruner, "none"):
            out = Path(tmp) / pruner
            plan = SweepPlan(
                task=args.task, dataset=dataset, cells=(args.cell,), trials=args.trials,
                seeds=1, storage=str(out / "sweeps.journal"), pruner=pruner, folds=args.folds,
                settings={"epochs": str(args.epochs), "patience": "0"}, output_dir=str(out),
            )
            rows[pruner] = sweep_cost(plan, args.cell)

    print(f"{args.task}/{dataset}, {args.cell}, {args.trials} trials x <= {args.epochs} epochs "
          "(patience off), seeded TPE; the search only (finals are the same for both)")
    print(f"{'pruner':<10}{'trial-epochs':>14}{'pruned':>8}{'best val':>10}{'seconds':>9}")
    for pruner, (epochs, best, pruned, seconds) in rows.items():
        print(f"{pruner:<10}{epochs:>14}{pruned:>8}{best:>10.4f}{seconds:>9.1f}")
    saved = 1 - rows[args.pruner][0] / rows["none"][0]
    print(f"{args.pruner} pruning saved {saved:.0%} of trial-epochs; best value "
          f"{rows[args.pruner][1]:.4f} vs {rows['none'][1]:.4f} without pruning")


if __name__ == "__main__":
    main()
