"""Cell checks on what training relies on: gradients reach every weight and flow back
through time, values stay finite, and the cell can learn something that needs memory.
"""

from __future__ import annotations

import torch

from seqbench.contracts import Cell
from seqbench.testing.cell_probe import HIDDEN, INPUT, build, call, inputs, leaves
from seqbench.testing.kit import expect

#: Adam steps `check_learns` allows; GRU and LSTM need under 100.
LEARN_STEPS = 300
#: `check_finite_at_scale`'s probes: (steps, input scale).
LONG, LARGE = (256, 1.0), (64, 30.0)
#: Steps per call: long probes are fed in pieces, carrying the state (`check_state_carry`
#: shows that this equals one call), so that no probe is long enough to make a step cell
#: compile its time loop (seqbench.step.CHUNK steps), which takes a minute on a laptop.
PIECE = 8


def check_gradients(cell: Cell) -> None:
    module = build(cell, layers=2, dropout=0.25).train()
    y, _ = call(module, inputs())
    weights = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    (y * weights).sum().backward()
    missing = [name for name, p in module.named_parameters() if p.requires_grad and (
        p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum())]
    expect(not missing, "a finite, non-zero gradient for every parameter (2 layers)",
           f"none or zero or non-finite for {missing}")


def check_gradient_through_time(cell: Cell) -> None:
    """Backpropagation through time is what trains the recurrence: the last step's output
    must have a gradient with respect to the first step's input. A state detached at every
    step (or not used at all) gives exactly zero, and the cell learns no memory. The
    output is weighted at random, not summed: the sum of a LayerNorm's outputs is the same
    for every input, so a model ending in one (the reference Transformer) would have no
    gradient at all."""
    module = build(cell, layers=2).train()
    x = inputs().requires_grad_()
    y, _ = call(module, x)
    weights = torch.randn(y[:, -1].shape, generator=torch.Generator().manual_seed(2)).to(y)
    (y[:, -1] * weights).sum().backward()
    reach = float(x.grad[:, 0].abs().sum()) if x.grad is not None else 0.0
    expect(reach > 0, "a non-zero gradient of the last step's output with respect to the "
           "first step's input (gradients flow across time)",
           "zero: the state is cut from the graph between steps (detached?)")


def check_no_unused_parameters(cell: Cell) -> None:
    """Every output row of every parameter (a unit of a projection, an entry of a bias)
    gets a gradient on 16 sequences of 12 steps. A projection, or part of one, that nothing
    uses (a gate dropped from the equations but not from the weights) still counts in
    `--param-budget`, so the cell competes with fewer working parameters than it is
    charged for. One layer, fed signed inputs: a second layer reads the first's outputs,
    and a ReLU unit there can be dead for every input at initialisation without being
    unused."""
    module = build(cell, layers=1).train()
    y, state = call(module, inputs(steps=12, batch=16))
    generator = torch.Generator().manual_seed(2)
    outputs = [y, *leaves(state)]
    sum((out * torch.randn(out.shape, generator=generator)).sum() for out in outputs).backward()
    unused = []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        rows = (torch.zeros(p.shape[:1]) if p.grad is None
                else p.grad.reshape(p.shape[0], -1).abs().sum(1) if p.dim() else p.grad.abs())
        dead = torch.nonzero(rows.reshape(-1) == 0).flatten().tolist()
        if dead:
            unused.append(f"{name} ({len(dead)} of {rows.numel()} rows)")
    expect(not unused, "a gradient for every output row of every parameter (1 layer, 16 "
           "sequences of 12 steps)", f"none for {', '.join(unused)}: a projection, or part "
           "of one, that nothing uses")


def check_finite_at_scale(cell: Cell) -> None:
    """Real inputs are long (thousands of frames) or large (unnormalised features): an
    exponential gate without its stabiliser (xLSTM's max-state) overflows there while
    every short, unit-scale probe passes."""
    module = build(cell, layers=2).eval()
    for steps, scale in (LONG, LARGE):
        x, state = inputs(steps=steps) * scale, None
        with torch.no_grad():
            for start in range(0, steps, PIECE):
                y, state = call(module, x[:, start:start + PIECE], state)
                finite = all(torch.isfinite(t).all() for t in (y, *leaves(state)))
                expect(finite, f"finite outputs and state over {steps} steps of inputs of "
                       f"scale {scale:g} (2 layers, eval mode)", f"non-finite values by step "
                       f"{start + PIECE}: an overflow (an exponential without a stabiliser?)")


def check_learns(cell: Cell) -> None:
    """Optional (`learn=True`): with a linear read-out, fit "output the input of the step
    before" on 32 fixed sequences. Needs memory of one step, so a cell that learns anything
    does it in a few hundred Adam steps; the MSE must fall below a quarter of its start."""
    module = build(cell, layers=1)
    head = torch.nn.Linear(HIDDEN, 1)
    x = torch.randn(32, 8, INPUT, generator=torch.Generator().manual_seed(6))
    target = torch.cat([torch.zeros(32, 1), x[:, :-1, 0]], dim=1)
    optimizer = torch.optim.Adam([*module.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(LEARN_STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(call(module, x)[0]).squeeze(-1), target)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    expect(losses[-1] < losses[0] / 4,
           f"the MSE of 'repeat the previous input' to fall below a quarter of its start "
           f"in {LEARN_STEPS} Adam steps", f"{losses[0]:.3g} -> {losses[-1]:.3g}")
