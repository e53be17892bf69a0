"""The machinery shared by the cell and task checks: outcomes, messages, pytest glue.

A check is a named zero-argument callable. Inside it, `expect(ok, expected, got)` states
one promise; the `Check` wrapper turns a broken promise into `CheckFailed("<check>:
expected <expected>, got <got>")`, and any other exception into the same shape, so an
author always reads which check failed, what the contract wanted and what their plugin did.
pytest is imported only by `parametrize`, so the kit itself needs nothing beyond seqbench.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal


class CheckFailed(AssertionError):
    """A conformance check failed; the message names the check, the expectation and the fact.

    `detail` is the message without the check's name: two checks failing with the same
    detail share one root cause, and `run_all` reports it once.
    """

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail


class CheckSkipped(Exception):
    """The check does not apply (no CUDA device, no check case, ...); the message says why."""


class _Mismatch(Exception):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(expected, got)
        self.expected, self.got = expected, got


def expect(ok: Any, expected: str, got: str) -> None:
    """Fail the running check unless `ok`, saying what was `expected` and what was `got`."""
    if not ok:
        raise _Mismatch(expected, got)


@contextmanager
def where(label: str):
    """Say where a promise inside the block was broken: "expected X on <label>, got Y".

    Used when one check repeats other checks on several datasets or settings; an exception
    that is not a broken promise is reported the same way, so the author learns both what
    failed and on which data.
    """
    try:
        yield
    except (CheckSkipped, CheckFailed):
        raise
    except _Mismatch as mismatch:
        raise _Mismatch(f"{mismatch.expected} on {label}", mismatch.got) from None
    except Exception as exc:
        raise _Mismatch(f"no exception on {label}", f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class Check:
    """One named check; calling it raises `CheckFailed` or `CheckSkipped`, or returns."""

    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        try:
            self.run()
        except (CheckSkipped, CheckFailed):
            raise
        except _Mismatch as mismatch:
            raise CheckFailed(self.name, f"expected {mismatch.expected}, got {mismatch.got}"
                              ) from None
        except Exception as exc:
            raise CheckFailed(self.name, f"expected no exception, got {type(exc).__name__}: {exc}"
                              ) from exc


@dataclass(frozen=True)
class Result:
    """The outcome of one check, as `check_cell` / `check_task` return them."""

    check: str
    outcome: Literal["passed", "failed", "skipped"]
    message: str = ""


def with_skips(checks: Iterable[Check], skip: Mapping[str, str] | None,
               default: Mapping[str, str] | None = None) -> list[Check]:
    """Replace the checks named in `skip` or `default` (name -> reason; `skip` wins) by
    ones that skip with the reason.

    Like scikit-learn's `expected_failed_checks`: an author can knowingly opt out of one
    check without losing the others, and says why; a bare list of names (no reasons) is
    refused, and an unknown name is an error, not a silent no-op.
    """
    if skip is not None and not isinstance(skip, Mapping):
        raise TypeError("skip must map each check's name to the reason for skipping it, "
                        "e.g. skip={'check_state_carry': 'stateless by design'}; got a "
                        f"{type(skip).__name__}")
    checks = list(checks)
    skip = {**(default or {}), **(skip or {})}
    unknown = sorted(set(skip) - {check.name for check in checks})
    if unknown:
        raise ValueError(f"unknown check(s) to skip: {', '.join(unknown)}")

    def skipper(reason: str) -> Callable[[], None]:
        def run() -> None:
            raise CheckSkipped(reason)

        return run

    return [Check(c.name, skipper(skip[c.name])) if c.name in skip else c for c in checks]


def run_all(checks: Sequence[Check], subject: str) -> list[Result]:
    """Run every check; raise one `CheckFailed` listing each failure's cause once (with the
    checks it broke), else return the results."""
    results, causes = [], {}
    for check in checks:
        try:
            check()
        except CheckSkipped as skipped:
            results.append(Result(check.name, "skipped", str(skipped)))
        except CheckFailed as failed:
            results.append(Result(check.name, "failed", str(failed)))
            causes.setdefault(failed.detail, []).append(check.name)
        else:
            results.append(Result(check.name, "passed"))
    if causes:
        # One line per root cause: a missing `initial_state` that breaks eight checks is
        # one mistake, and the author should read it once, with every check it broke.
        failed = sum(map(len, causes.values()))
        raise CheckFailed(subject, f"{failed} of {len(results)} checks failed:\n  " + "\n  ".join(
            f"{', '.join(names)}: {detail}" for detail, names in causes.items()))
    return results


def parametrize(checks_by_subject: Mapping[str, Sequence[Check]], argname: str = "check"):
    """A `pytest.mark.parametrize` over every check: one test, with its own id, per check.

    `CheckSkipped` becomes a pytest skip with the check's reason.
    """
    import pytest

    def as_test(check: Check) -> Callable[[], None]:
        def run() -> None:
            try:
                check()
            except CheckSkipped as skipped:
                pytest.skip(f"{check.name}: {skipped}")

        return run

    several = len(checks_by_subject) > 1
    params = [
        pytest.param(as_test(check), id=f"{subject}-{check.name}" if several else check.name)
        for subject, checks in checks_by_subject.items()
        for check in checks
    ]
    return pytest.mark.parametrize(argname, params)
