"""How many planted bugs the kit catches: prints caught/total for cells and tasks.

    python tests/count_planted.py

Runs the conformance kit on every bug of the planted-bug suite (tests/test_planted_bugs.py,
and the composing networks of tests/test_composing_kit.py) and counts a bug as *caught*
when the check named for it fails, and as *named* when that check's message also names
the bug (the suite's expected text). The bugs of the second round of author trials (issue
#39, section 2) are counted on their own line as well, and once more as planted in
seqbench's own GRU, sLSTM and speech task (tests/heldout.py), hosts the checks were not
written against. The pytest suite asserts each bug; this prints the tally.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS.parent)]  # the suite, and the kit of this checkout

from seqbench.testing import CheckFailed  # noqa: E402
from test_composing_kit import COMPOSING_BUGS, run_planted_network  # noqa: E402
from test_heldout_bugs import (  # noqa: E402
    HELDOUT_CELL_BUGS,
    HELDOUT_TASK_BUGS,
    run_heldout_cell,
    run_heldout_task,
)
from test_planted_bugs import (  # noqa: E402
    CELL_BUGS,
    TASK_BUGS,
    TRIAL_CELL_BUGS,
    TRIAL_TASK_BUGS,
    causes,
    names_bug,
    run_planted_cell,
    run_planted_task,
)

Bug = tuple[str, str, str, Callable[[], object]]  # (bug, check, message, run the kit)


def outcome(check: str, message: str, run: Callable[[], object]) -> tuple[bool, bool]:
    """(caught by `check`, with a message containing `message`), each bug with its own
    empty preprocessing cache, as the pytest suite gives each test."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SEQBENCH_CACHE_DIR"] = cache
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # generate()'s samples
                run()
        except CheckFailed as failure:
            found = causes(failure)
            return check in found, names_bug(message, found.get(check, ""))
    return False, False


Results = dict[tuple[str, str], tuple[bool, bool]]


def measure(bugs: list[Bug]) -> Results:
    """{(bug, check): (caught, named)}, printing each bug that is missed or misnamed."""
    results = {}
    for bug, check, message, run in bugs:
        results[bug, check] = outcome(check, message, run)
        if results[bug, check] != (True, True):
            print(f"  missed or misnamed: {bug} ({check})")
    return results


def tally(label: str, results: Results, only: set[str] | None = None) -> str:
    chosen = [value for (bug, _), value in results.items() if only is None or bug in only]
    caught, named = sum(c for c, _ in chosen), sum(n for _, n in chosen)
    return (f"{label}: {caught}/{len(chosen)} caught by the check named for them, "
            f"{named}/{len(chosen)} with a message naming the bug")


def main() -> None:
    warnings.simplefilter("ignore")
    cells = measure([(bug, check, message,
                      lambda bug=bug, check=check: run_planted_cell(bug, check))
                     for bug, check, message in CELL_BUGS])
    tasks = measure([(bug, check, message,
                      lambda task=task, bug=bug, check=check: run_planted_task(task, bug, check))
                     for task, bug, check, message in TASK_BUGS])
    composing = measure([(network.__name__, check, message,
                          lambda network=network: run_planted_network(network))
                         for network, check, message in COMPOSING_BUGS])
    heldout_cells = measure([(bug, check, message,
                              lambda bug=bug, check=check: run_heldout_cell(bug, check))
                             for bug, check, message in HELDOUT_CELL_BUGS])
    heldout_tasks = measure([(bug, check, message,
                              lambda bug=bug, check=check: run_heldout_task(bug, check))
                             for bug, check, message in HELDOUT_TASK_BUGS])
    print(tally("cells, whole suite", cells))
    print(tally("cells, issue #39 section 2", cells, {bug for bug, *_ in TRIAL_CELL_BUGS}))
    print(tally("tasks, whole suite", tasks))
    print(tally("tasks, issue #39 section 2", tasks, {bug for _, bug, *_ in TRIAL_TASK_BUGS}))
    print(tally("tasks that compose cells", composing))
    print(tally("issue #39 section 2 cell bugs in seqbench's GRU and sLSTM", heldout_cells))
    print(tally("issue #39 section 2 task bugs in seqbench's speech task", heldout_tasks))


if __name__ == "__main__":
    main()
