"""`python -m seqbench` and the `seqbench` console script."""

import sys

from seqbench.cli import main


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
