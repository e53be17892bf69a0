"""Hyperparameters declared as data.

Cells and tasks declare their extra hyperparameters as `Param` objects so that the CLI,
validation and sweeps can see them without building a model. Values arrive as strings from
`--set key=value`, as numbers from configs and as suggestions from Optuna; `Param.coerce`
is the single place that turns any of those into a checked Python value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from seqbench.errors import SeqbenchError, unknown_name

#: Seeds reach numpy, which takes 0 .. 2**32 - 1.
MAX_SEED = 2**32 - 1
#: More threads than any machine has cores; OpenMP would refuse a larger value with a
#: warning of its own and run on its default instead.
MAX_THREADS = 4096
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One tunable hyperparameter.

    `low`/`high` bound both validation and the sweep's search range; `log` asks the sweep to
    sample log-uniformly; `choices` makes the parameter categorical. `tune=False` keeps a
    parameter out of sweeps while still validating it (e.g. a fixed protocol choice).
    `search` narrows what a sweep explores: a `(low, high)` range for a number, or the subset
    of `choices` worth searching for a categorical parameter. `search_by` makes the range
    conditional on a categorical parameter, `(name, {choice: (low, high)})`: a learning rate
    that trains with Adam diverges with SGD, so one range for every optimizer wastes trials.
    `before` is what a stored spec written before the parameter existed meant (None: the
    default): a plugin that adds a parameter with a new default behaviour sets it to the old
    behaviour, so an old run record re-runs, resumes and matches a sweep's cache as what it
    was (`RunSpec.from_dict`), while new runs get the new default.
    """

    name: str
    type: type
    default: Any
    help: str = ""
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    tune: bool = True
    search: tuple[Any, ...] | None = None
    search_by: tuple[str, Mapping[Any, tuple[float, float]]] | None = None
    before: Any = None

    @property
    def search_range(self) -> tuple[float | None, float | None]:
        """The range a sweep explores: `search` if given, else the validity bounds."""
        return self.search if self.search is not None else (self.low, self.high)

    @property
    def search_choices(self) -> tuple[Any, ...]:
        """The categories a sweep explores: `search` if given, else every choice. The default
        is always among them: it is the sweep's first trial (the lm task's SGD, say)."""
        if self.type is bool:
            return (False, True)
        if self.search is None:
            return tuple(self.choices or ())
        return tuple(self.search) + (() if self.default in self.search else (self.default,))

    def range_given(self, value: Any) -> tuple[float | None, float | None]:
        """The search range when the parameter `search_by` names takes `value`."""
        if self.search_by is None:
            return self.search_range
        return self.search_by[1].get(value, self.search_range)

    def __post_init__(self) -> None:
        if self.type not in (int, float, str, bool):
            raise TypeError(f"Param {self.name}: type must be int, float, str or bool")
        if self.default is not None:
            self.coerce(self.default)

    def coerce(self, value: Any) -> Any:
        """Convert `value` to this parameter's type and check its range; raise SeqbenchError."""
        converted = self._convert(value)
        if self.choices is not None and converted not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise SeqbenchError(f"{self.name}={value!r} is not allowed; choose one of: {allowed}.")
        if self.type in (int, float):
            if isinstance(converted, float) and not math.isfinite(converted):
                raise SeqbenchError(f"{self.name}={value!r} must be a finite number.")
            if self.low is not None and converted < self.low:
                raise SeqbenchError(f"{self.name}={value!r} is below the minimum "
                                    f"{number(self.low)}.")
            if self.high is not None and converted > self.high:
                raise SeqbenchError(f"{self.name}={value!r} is above the maximum "
                                    f"{number(self.high)}.")
        return converted

    def _convert(self, value: Any) -> Any:
        kind = self.type.__name__
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise SeqbenchError(f"{self.name}={value!r} is not a boolean (use true/false).")
        if self.type is int:
            if isinstance(value, bool):
                raise SeqbenchError(f"{self.name}={value!r} is not an integer.")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise SeqbenchError(f"{self.name}={value!r} is not an integer.") from None
            if not number.is_integer():
                raise SeqbenchError(f"{self.name}={value!r} is not an integer.")
            return int(number)
        try:
            return self.type(value)
        except (TypeError, ValueError):
            raise SeqbenchError(f"{self.name}={value!r} is not a valid {kind}.") from None

    def describe(self) -> str:
        """One-line human summary used by `seqbench list` and error messages."""
        if self.choices is not None:
            domain = "{" + ", ".join(map(str, self.choices)) + "}"
        elif self.low is not None or self.high is not None:
            low = "-inf" if self.low is None else number(self.low)
            high = "inf" if self.high is None else number(self.high)
            domain = f"[{low}, {high}]" + (" log" if self.log else "")
        else:
            domain = self.type.__name__
        return f"{self.name}={self.default!r} {domain}"


def resolve(
    params: Iterable[Param], given: Mapping[str, Any], owner: str
) -> dict[str, Any]:
    """Validate `given` against `params`; return every declared value with defaults filled in."""
    declared = {p.name: p for p in params}
    for key in given:
        if key not in declared:
            raise unknown_name(f"hyperparameter for {owner}", key, declared)
    return {
        name: (p.coerce(given[name]) if name in given else p.default)
        for name, p in declared.items()
    }


def whole_number(value: Any, what: str) -> int:
    """`value` as an int where it is one (numpy's integers too), or one clear error: a bool,
    a float or text given through the Python API or a spec file fails later, and obscurely."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise SeqbenchError(f"{what} must be a whole number (got {value!r}).") from None


def check_seed(seed: Any, what: str = "seed", most: int = MAX_SEED) -> int:
    """`seed` as an int in 0..`most`, or one clear error. A seed from a spec file or the
    Python API skips the command line's own bounds, and numpy or Lightning would otherwise
    refuse it with a traceback after the run folder exists."""
    seed = whole_number(seed, what)
    if not 0 <= seed <= most:
        raise SeqbenchError(f"{what}={seed} is out of range: use 0 to {most}.")
    return seed


def number(bound: float) -> str:
    """A bound as people write it: whole numbers in full (a seed's 4294967295, not
    4.29497e+09), others in `:g` form."""
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


class ReadRecorder(Mapping):
    """A read-only view of a parameter dict that remembers which keys were looked at."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = params
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._params[key]

    def __iter__(self) -> Iterator[str]:
        self.read.update(self._params)  # iterating exposes every key
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)


def check_threads(threads: Any, what: str = "threads") -> int | None:
    """A spec's thread count: None (not decided yet) or a whole number in 1..MAX_THREADS."""
    if threads is None:
        return None
    threads = whole_number(threads, what)
    if not 1 <= threads <= MAX_THREADS:
        raise SeqbenchError(f"{what}={threads} is out of range: use 1 to {MAX_THREADS}.")
    return threads
