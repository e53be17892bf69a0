"""Cell checks on state: what `forward` hands on, and what it must leave alone.

The core carries the returned state into the next window (detached) and reuses the
tensors it passes in; a cell that continues the sequence wrongly, or writes into its
input, its incoming state or its buffers, silently changes what every later batch sees.
"""

from __future__ import annotations

import torch

from seqbench.contracts import Cell
from seqbench.step import state_shapes
from seqbench.testing.cell_probe import build, call, close, inputs, leaves, max_diff
from seqbench.testing.kit import expect

#: PyTorch's words for a tensor the graph saved and something then changed in place.
INPLACE_ERROR = "modified by an inplace operation"


def check_state_carry(cell: Cell) -> None:
    module = build(cell, layers=2, dropout=0.25).eval()
    x = inputs(steps=9)
    with torch.no_grad():
        whole, _ = call(module, x)
        first, state = call(module, x[:, :4])
        second, _ = call(module, x[:, 4:], state)
    joined = torch.cat([first, second], dim=1)
    expect(close(joined, whole),
           "two calls carrying the state (4 then 5 steps, eval mode) to equal one call on "
           "all 9 steps", f"a max difference of {max_diff(joined, whole):.3g}")


def check_state_carried_by_core(cell: Cell) -> None:
    """The core's own carrying (`seqbench.model.carried_state`) on this cell's state.

    Tasks with `carry_state` never see the state: the core detaches it and hands it to the
    next batch of the same size. This check runs exactly that code on the cell's state,
    whatever its nesting and layout (e.g. `[B, H, K]` per layer, batch first), so a state
    the core would drop or fail to detach is caught here rather than as a silently worse
    language model.
    """
    from seqbench.model import carried_state

    module = build(cell, layers=2, dropout=0.25).train()
    _, state = call(module, inputs(steps=4))
    batch = inputs().shape[0]
    try:
        carried = carried_state((batch, state), batch)
    except Exception as exc:  # noqa: BLE001 - what the core would raise between two windows
        expect(False, "the core to carry the state, as it is, to a batch of the same size",
               f"{type(exc).__name__}: {exc}: the state holds something other than tensors "
               "(and tuples, lists or dicts of them)")
    expect(type(carried) is type(state) and state_shapes(carried) == state_shapes(state),
           "the core to carry the state, as it is, to a batch of the same size",
           f"{type(carried).__name__} {state_shapes(carried)!r} from {state_shapes(state)!r}")
    pairs = list(zip(leaves(carried), leaves(state), strict=True))
    expect(all(torch.equal(got, kept) for got, kept in pairs),
           "the carried state to hold the values of the state returned", "other values")
    attached = sum(got.requires_grad for got, _ in pairs)
    expect(not attached, "the carried state to be cut from the previous window's graph",
           f"{attached} tensor(s) still requiring grad")


def check_input_untouched(cell: Cell) -> None:
    """The core passes the encoder's features, and the state it carries, by reference: a
    cell that writes into them changes the caller's tensors (an `x /= scale` is in place)."""
    module = build(cell, layers=2).train()
    x = inputs()
    kept = x.clone()
    module(x)
    expect(torch.equal(x, kept), "forward(x) to leave its input x unchanged",
           f"x modified in place (a max change of {max_diff(x, kept):.3g})")
    with torch.no_grad():
        _, state = call(module, x)
        before = [leaf.clone() for leaf in leaves(state)]
        call(module, inputs(seed=2), state)
    changed = sum(not torch.equal(a, b) for a, b in zip(before, leaves(state)))
    expect(not changed, "forward(x, state) to leave the state passed in unchanged",
           f"{changed} state tensor(s) modified in place")


def check_buffers_unchanged(cell: Cell) -> None:
    """A buffer is part of the model, not of one batch: updated in place by `forward`, it
    makes outputs depend on the batches seen before (eval mode) or breaks backward when
    the graph saved it (train mode). Out-of-graph statistics such as BatchNorm's running
    means update in train mode without harm, so only a failing backward counts there."""
    module = build(cell, layers=2)
    before = {name: buffer.clone() for name, buffer in module.named_buffers()}
    with torch.no_grad():
        call(module.eval(), inputs())
    changed = [n for n, b in module.named_buffers() if not torch.equal(b, before[n])]
    expect(not changed, "forward() in eval mode to leave every buffer unchanged",
           f"buffer(s) {changed} updated in place")
    before = {name: buffer.clone() for name, buffer in module.named_buffers()}
    y, _ = call(module.train(), inputs())
    try:
        y.sum().backward()
    except RuntimeError as exc:
        if INPLACE_ERROR not in str(exc):
            raise
        changed = [n for n, b in module.named_buffers() if not torch.equal(b, before[n])]
        expect(False, "forward() in train mode not to update in place a buffer the "
               "computation uses (backward needs its old value)",
               f"buffer(s) {changed or '(none found; a tensor)'} updated in place, and "
               f"backward failed: {str(exc).splitlines()[0]}")
