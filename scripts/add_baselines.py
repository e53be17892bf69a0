"""Add the task baselines a recorded study lacks, computed from each final's recorded spec.

    SEQBENCH_DATA_DIR=../shared/data python scripts/add_baselines.py \
        --storage results/studies.journal --study airline,m1,etth1

Then rebuild the tables with the `seqbench report` command their index.html prints. How the
values are checked before anything is written: `seqbench.sweeps.baselines`.
"""

from __future__ import annotations

import argparse
import sys

from seqbench.errors import SeqbenchError
from seqbench.sweeps.baselines import add_missing_baselines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="journal file or RDB URL")
    parser.add_argument("--study", required=True, help="sweep study prefixes, a,b")
    parser.add_argument("--data-dir", default=None, help="canonical data files")
    args = parser.parse_args()
    try:
        for prefix in args.study.split(","):
            for name, added in add_missing_baselines(args.storage, prefix,
                                                     args.data_dir).items():
                print(f"{name}: added {', '.join(added)}")
    except SeqbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
