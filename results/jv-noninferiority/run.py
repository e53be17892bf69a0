"""Japanese Vowels: is tuning non-inferior to the untuned defaults? The rule, stated in
results/README.md before any of these runs: for every cell, the lower end of the 95%
interval of (tuned − its untuned defaults) test accuracy must be at least −0.01, over 20
final seeds each, the interval counting training seeds and test items
(`seqbench.reports.resampling`).

"Tuned" is each cell's configuration chosen by the published 30-trial sweep (the spec its
final runs recorded, results/finals/jv/); "defaults" is `seqbench run --task speech --cell
C`. Both are trained with seeds 1000-1019 (the finals' range, disjoint from the search and
selection seeds), through `seqbench.run`, on a fixed thread count that every record keeps.
Finished runs under `--out` are reused, so the script resumes where it stopped; only the run
records are kept (no checkpoints). A cell whose selection kept the defaults has one
configuration for both arms: it meets the rule by construction and is trained once.

    python results/jv-noninferiority/run.py [--seeds 20] [--threads 1]
                                            [--out results/jv-noninferiority/runs]

Writes `result.md` beside this script: per cell the difference, its interval and the
verdict, whichever way it falls.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE.parent / "finals" / "jv" / "speech-japanese-vowels"
CELLS = ("lstm", "gru", "rnn")
FIRST_SEED = 1000
#: The pre-stated margin: tuned may be at most this much less accurate than the defaults.
MARGIN = -0.01


def arms(cell: str) -> dict[str, object]:
    """The cell's tuned spec (from its published final) and its defaults' spec."""
    import seqbench as sb

    tuned = sb.spec_for(spec=PUBLISHED / cell / f"seed{FIRST_SEED}" / "config.json")
    return {"tuned": tuned,
            "defaults": sb.spec_for("speech", cell, "japanese-vowels", seed=FIRST_SEED)}


def train(spec, seeds: int, out: Path) -> list[Path]:
    """`spec` with seeds FIRST_SEED.., reusing finished runs under `out`."""
    import seqbench as sb
    from seqbench import runs as records

    folders = []
    for seed in range(FIRST_SEED, FIRST_SEED + seeds):
        seeded = sb.spec_for(spec=spec, seed=seed)
        folder = records.completed_run(out, seeded)
        if folder is None:
            started = time.perf_counter()
            run = sb.run(spec=seeded, output_dir=out, progress=False)
            records.keep_record_only(run.dir)
            print(f"{spec.cell} seed {seed}: {run.metrics['test_accuracy']:.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
            folder = run.dir
        folders.append(folder)
    return folders


def scores(folders: list[Path]):
    """Seeds x test items of the runs, as the reports resample them."""
    import json

    from seqbench.reports import resampling
    from seqbench.reports.items import read_items

    items = [read_items({"metrics": json.loads((f / "metrics.json").read_text()),
                         "run_dir": str(f)}) for f in folders]
    return resampling.from_items(np.array([i.values for i in items]), items[0].weights)


def verdict(cell: str, same: bool, tuned, defaults) -> str:
    """One Markdown row: the cell, both means, the difference with its interval, the rule."""
    from seqbench.reports import resampling

    if same:
        mean = tuned.seed_means.mean()
        return (f"| {cell} | {mean:.4f} | {mean:.4f} (the same configuration: selection kept "
                "the defaults) | 0 | by construction | yes |")
    difference = resampling.difference(tuned, defaults)
    met = difference.low >= MARGIN
    return (f"| {cell} | {tuned.seed_means.mean():.4f} | {defaults.seed_means.mean():.4f} | "
            f"{difference.estimate:+.4f} | [{difference.low:+.4f}, {difference.high:+.4f}] | "
            f"{'yes' if met else 'no'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "runs")
    args = parser.parse_args()

    from seqbench import threads

    threads.configure(args.threads)  # before torch loads
    rows = []
    for cell in CELLS:
        specs = arms(cell)
        same = specs["tuned"].to_dict() == specs["defaults"].to_dict()
        runs = {arm: train(spec, args.seeds, args.out) for arm, spec in specs.items()
                if not (same and arm == "defaults")}
        tuned = scores(runs["tuned"])
        rows.append(verdict(cell, same, tuned, tuned if same else scores(runs["defaults"])))
    table = "\n".join([
        f"# Japanese Vowels: tuned against untuned defaults, {args.seeds} seeds each",
        "",
        f"Rule (stated in results/README.md before the runs): the lower end of the 95% "
        f"interval of tuned − defaults test accuracy is at least {MARGIN}. Interval: "
        "Welch-Satterthwaite over training seeds and the 370 test items "
        f"(seqbench.reports.resampling); seeds {FIRST_SEED}-{FIRST_SEED + args.seeds - 1}, "
        f"{args.threads} thread(s).",
        "",
        "| cell | tuned | defaults | tuned − defaults | 95% interval | rule met |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Regenerate: `python results/jv-noninferiority/run.py "
        f"--seeds {args.seeds} --threads {args.threads}`",
        "",
    ])
    (HERE / "result.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
