"""Cell checks on what `build` builds: every setting counts, every weight is saved and
trained, and the same seed gives the same module in any process.

Sweeps vary `num_layers`, `dropout` and the declared parameters, seeds decide the
initial weights of every final run, and `best.ckpt` is restored from the `state_dict`: a
setting the module ignores, or a weight that lives outside it, makes a comparison that
looks fair and is not.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from typing import Any

import torch

from seqbench.contracts import Cell
from seqbench.testing.cell_probe import (
    BATCH,
    HIDDEN,
    STEPS,
    build,
    call,
    fingerprint,
    inputs,
    max_diff,
    other_value,
    same_module,
    weights_digest,
)
from seqbench.testing.kit import CheckSkipped, expect


def check_params_respected(cell: Cell) -> None:
    varied = [(p, other_value(p)) for p in cell.params]
    varied = [(p, value) for p, value in varied if value is not None]
    if not varied:
        raise CheckSkipped("the cell declares no hyperparameter the kit can vary")
    x = inputs()
    default = fingerprint(build(cell, layers=2), x)
    for param, value in varied:
        changed = fingerprint(build(cell, layers=2, **{param.name: value}), x)
        expect(tuple(changed[0].shape) == (BATCH, STEPS, HIDDEN),
               f"output shape {(BATCH, STEPS, HIDDEN)} with {param.name}={value!r}",
               f"{tuple(changed[0].shape)}")
        expect(not same_module(changed, default),
               f"building with {param.name}={value!r} instead of {param.default!r} to change "
               "the module (outputs, parameters or structure)", "an identical module")


def check_layers_respected(cell: Cell) -> None:
    x = inputs()
    expect(not same_module(fingerprint(build(cell, layers=2), x),
                           fingerprint(build(cell, layers=1), x)),
           "building with num_layers=2 to give another module than num_layers=1",
           "an identical module: num_layers is ignored")


def check_dropout_respected(cell: Cell) -> None:
    """Dropout acts in train mode, between stacked layers: 2 layers with dropout=0.5 and
    the same seeds must train on other outputs than with dropout=0."""
    x = inputs()
    runs = []
    for dropout in (0.0, 0.5):
        module = build(cell, layers=2, dropout=dropout).train()
        torch.manual_seed(5)
        runs.append(call(module, x)[0].detach())
    expect(not torch.equal(*runs), "building with dropout=0.5 (2 layers, train mode) to change "
           "the outputs from dropout=0", "identical outputs: dropout is ignored")


def check_deterministic(cell: Cell) -> None:
    runs = []
    for _ in range(2):
        module = build(cell, layers=2, dropout=0.25, seed=4).train()
        torch.manual_seed(5)
        runs.append(call(module, inputs())[0].detach())
    expect(torch.equal(*runs),
           "identical outputs from two builds and forward passes under the same seeds "
           "(train mode, dropout on)", f"a max difference of {max_diff(*runs):.3g}")


def check_state_dict_roundtrip(cell: Cell) -> None:
    source, target = build(cell, layers=2, seed=0).eval(), build(cell, layers=2, seed=1).eval()
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    # weights_only=True is how the core reloads best.ckpt: plain tensors must be enough.
    target.load_state_dict(torch.load(buffer, weights_only=True))
    x = inputs()
    with torch.no_grad():
        expected, _ = call(source, x)
        got, _ = call(target, x)
    expect(torch.equal(expected, got),
           "a module loaded from another's saved state_dict to give the same outputs",
           f"a max difference of {max_diff(expected, got):.3g}")


def _tensors(value: Any, path: str, depth: int = 0):
    """(path, tensor) for every tensor in an attribute, inside lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{path}[{index}]", depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{path}[{key!r}]", depth + 1)


#: nn.Module's own registries: what is in them is registered.
REGISTRIES = {"_parameters", "_buffers", "_modules"}


def check_no_hidden_tensors(cell: Cell) -> None:
    """A trainable tensor that is not a registered Parameter (a plain tensor with
    `requires_grad=True`, or Parameters in a Python list) is never updated by the optimizer,
    never saved in `state_dict`, and not counted by `--param-budget`."""
    module = build(cell, layers=2).train()
    call(module, inputs())  # some modules create their tensors on first use
    registered = {id(p) for p in module.parameters()}
    stray = [f"{prefix + '.' if prefix else ''}{path}"
             for prefix, sub in module.named_modules()
             for name, value in vars(sub).items() if name not in REGISTRIES
             for path, tensor in _tensors(value, name)
             if tensor.requires_grad and tensor.is_leaf and id(tensor) not in registered]
    expect(not stray, "every trainable tensor (requires_grad) to be a registered parameter",
           f"{stray} outside parameters(): the optimizer never updates them and state_dict "
           "does not save them")


#: Run in a fresh interpreter: build the cell (a name or a pickled Cell) and print its digest.
CHILD = """
import pickle, sys
from seqbench import registry
from seqbench.testing.cell_probe import weights_digest
given = pickle.loads(sys.stdin.buffer.read())
print(weights_digest(registry.get_cell(given) if isinstance(given, str) else given, 0))
"""


def _payload(cell: Cell) -> bytes:
    """The cell pickled (by reference to its build function), else its name when an
    installed entry point provides it: what another interpreter can rebuild it from."""
    from seqbench import registry

    try:
        return pickle.dumps(cell)
    except Exception as exc:  # noqa: BLE001 - closures, lambdas, local classes
        entry = registry.discover("cell").get(cell.name)
        if entry is not None and entry.plugin is cell:
            return pickle.dumps(cell.name)
        raise CheckSkipped("the cell cannot be rebuilt in another process (its build is not "
                           f"importable by name: {exc}); check it by its installed name"
                           ) from exc


def _digest_elsewhere(cell: Cell) -> str:
    """`weights_digest(cell, 0)` in another interpreter with another PYTHONHASHSEED."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1",
           "PYTHONHASHSEED": "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"}
    child = subprocess.run([sys.executable, "-c", CHILD], input=_payload(cell), env=env,
                           capture_output=True, timeout=300)
    if child.returncode != 0:
        last = (child.stderr.decode(errors="replace").strip().splitlines() or ["?"])[-1]
        raise CheckSkipped(f"the cell could not be rebuilt in another process: {last}")
    return child.stdout.decode().strip().splitlines()[-1]


def check_init_follows_seed(cell: Cell) -> None:
    """Initial weights come from torch's seed and nothing else: another seed gives other
    weights, and the same seed the same weights in another process. Seeding from
    `hash(str)` (randomised per process by PYTHONHASHSEED) or iterating a set of names
    passes every in-process check and still makes runs unrepeatable."""
    here, other = weights_digest(cell, 0), weights_digest(cell, 1)
    if here is None:
        raise CheckSkipped("the cell has no weights")
    expect(here != other, "other initial weights for another torch seed",
           "the same weights for seeds 0 and 1: initialisation ignores torch's seed")
    expect(_digest_elsewhere(cell) == here,
           "the same initial weights for the same torch seed in another process (another "
           "PYTHONHASHSEED)", "other weights: initialisation depends on the process (seeded "
           "from hash(str), or from the order of a set?)")
