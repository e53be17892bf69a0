"""Conformance checks for cell plugins: what `Cell.build(...)` must promise to the core.

The checks are the properties the core relies on without testing them itself: it trains
with dropout between stacked layers, carries state across windows, restores `best.ckpt`
with `weights_only=True`, and lets sweeps vary every declared hyperparameter. They live in
modules by what they are about (`cell_shapes`, `cell_state`, `cell_dependence`,
`cell_build`, `cell_training`); this one lists them in the order they run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from seqbench.contracts import Cell
from seqbench.testing.cell_build import (
    check_deterministic,
    check_dropout_respected,
    check_init_follows_seed,
    check_layers_respected,
    check_no_hidden_tensors,
    check_params_respected,
    check_state_dict_roundtrip,
)
from seqbench.testing.cell_dependence import (
    check_batch_first,
    check_batch_independence,
    check_causal,
    check_eval_deterministic,
    check_fresh_state,
)
from seqbench.testing.cell_probe import CellLike, cell_label, resolve_cell
from seqbench.testing.cell_shapes import (
    check_cuda,
    check_device_follows_input,
    check_dtype_follows_input,
    check_output_shape,
    check_output_shape_stacked,
    check_params_declared,
    check_state_shape,
)
from seqbench.testing.cell_state import (
    check_buffers_unchanged,
    check_input_untouched,
    check_state_carried_by_core,
    check_state_carry,
)
from seqbench.testing.cell_training import (
    check_finite_at_scale,
    check_gradient_through_time,
    check_gradients,
    check_learns,
    check_no_unused_parameters,
)
from seqbench.testing.kit import Check, with_skips

__all__ = ["CELL_CHECKS", "cell_checks", "cell_label", "resolve_cell"]

CELL_CHECKS: tuple[Callable[[Cell], None], ...] = (
    check_params_declared,
    check_output_shape,
    check_output_shape_stacked,
    check_state_shape,
    check_state_carry,
    check_fresh_state,
    check_input_untouched,
    check_buffers_unchanged,
    check_gradients,
    check_gradient_through_time,
    check_no_unused_parameters,
    check_no_hidden_tensors,
    check_batch_independence,
    check_batch_first,
    check_causal,
    check_deterministic,
    check_eval_deterministic,
    check_init_follows_seed,
    check_state_dict_roundtrip,
    check_params_respected,
    check_layers_respected,
    check_dropout_respected,
    check_finite_at_scale,
    check_dtype_follows_input,
    check_device_follows_input,
    check_cuda,
    check_state_carried_by_core,
    check_learns,
)


def cell_checks(cell: CellLike, skip: Mapping[str, str] | None = None,
                learn: bool = False) -> list[Check]:
    """The checks for `cell`; the cell is resolved when a check runs, not before.
    `check_learns` (a short training run) is skipped unless `learn`."""

    def bind(check: Callable[[Cell], None]) -> Check:
        return Check(check.__name__, lambda: check(resolve_cell(cell)))

    off = {} if learn else {"check_learns": "optional: pass learn=True to run it"}
    return with_skips([bind(check) for check in CELL_CHECKS], skip, off)
