"""`python -m seqbench` and the `seqbench` console script."""

import sys


def run() -> None:
    try:  # Ctrl-C while the CLI itself loads is still an interrupt, not a traceback
        from seqbench.cli import main
    except KeyboardInterrupt:
        print("interrupted.", file=sys.stderr)
        sys.exit(130)
    sys.exit(main())


if __name__ == "__main__":
    run()
