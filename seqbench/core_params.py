"""The core hyperparameters: what every run has, whatever its cell and task.

A table of `Param`s, kept apart from `seqbench.config` (which builds specs from it) because
the declaration checks (`seqbench.declarations`) need it too, and they sit below the
registry that `config` imports: with the table inside `config`, `config -> registry ->
declarations -> config` was an import cycle.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from seqbench.errors import unknown_name
from seqbench.params import Param

if TYPE_CHECKING:
    from seqbench.contracts import Task

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
#: What a sweep explores by default. AdamW equals Adam while weight decay is not tuned, and
#: SGD needs learning rates two orders of magnitude above the adaptive methods', so it
#: only enters a sweep when the user fixes it (`--set optimizer=sgd`), with its own range.
SEARCHED_OPTIMIZERS = ("adam", "rmsprop")
#: Learning-rate ranges in which each optimizer trains recurrent nets (with clipping).
LR_SEARCH = {"adam": (1e-4, 1e-2), "adamw": (1e-4, 1e-2), "rmsprop": (1e-4, 3e-3),
             "sgd": (0.03, 30.0)}

#: Training hyperparameters every run has. Tasks may override the defaults (`Task.defaults`).
CORE_PARAMS: tuple[Param, ...] = (
    Param("epochs", int, 20, "maximum training epochs", low=1, high=100_000, tune=False),
    Param("hidden_size", int, 128, "units per recurrent layer", low=1, high=16_384,
          log=True, search=(32, 512)),
    Param("layers", int, 1, "stacked recurrent layers", low=1, high=16, search=(1, 3)),
    Param("dropout", float, 0.0, "dropout between stacked layers", low=0.0, high=0.95,
          search=(0.0, 0.5)),
    Param("lr", float, 1e-3, "learning rate", low=1e-8, high=100.0, log=True,
          search=(1e-4, 1e-2), search_by=("optimizer", LR_SEARCH)),
    Param("batch_size", int, 32, "sequences per batch", low=1, high=1_000_000, log=True,
          search=(8, 128)),
    Param("optimizer", str, "adam", "optimizer", choices=OPTIMIZERS,
          search=SEARCHED_OPTIMIZERS),
    Param("weight_decay", float, 0.0, "L2 penalty (decoupled for adamw)", low=0.0, high=1.0,
          tune=False),
    Param("clip", float, 1.0, "gradient-norm clipping threshold (0 = off); on by default "
          "because recurrent nets explode", low=0.0, high=10_000.0, log=True, search=(0.1, 10.0)),
    Param("lr_decay", float, 1.0, "multiply the lr by this each epoch after the first "
          "lr_decay_start epochs (Zaremba et al. 2014: 0.5 after 4; 1 = constant)", low=0.01,
          high=1.0, tune=False),
    Param("lr_decay_start", int, 0, "epochs trained at the full lr before lr_decay applies",
          low=0, high=100_000, tune=False),
    Param("patience", int, 5, "early-stopping patience in epochs (0 = off)", low=0,
          high=100_000, tune=False),
    Param("min_epochs", int, 0, "neither early stopping nor pruning stops a run before this "
          "many epochs (a slow starter may sit on a plateau first)", low=0, high=100_000,
          tune=False),
    Param("min_steps", int, 0, "likewise in optimisation steps (for data sets with one or "
          "two batches per epoch)", low=0, high=100_000_000, tune=False),
    Param("folds", int, 1, "k-fold (or rolling-origin) validation: the task re-splits its "
          "training data into this many folds (1 = the dataset's own validation split)",
          low=1, high=100, tune=False),
    Param("fold", int, 0, "which fold this run validates on (0-based, below folds)", low=0,
          high=99, tune=False),
    Param("refit", bool, False, "train on the training and validation data together for "
          "exactly `epochs` epochs and keep the last weights (no early stopping): how a sweep's "
          "finals train a configuration chosen by k-fold validation", tune=False),
    # Where one run trains. Results depend on them (each device trains on its own share of
    # every epoch's batches, averaging gradients: the effective batch is devices x
    # num_nodes x batch_size), so they are part of the spec and of its command.
    Param("devices", int, 1, "devices one run trains on with DDP: CPU processes, or GPUs",
          low=1, high=4096, tune=False),
    Param("num_nodes", int, 1, "machines one run spans, each with `devices` devices", low=1,
          high=4096, tune=False),
    Param("strategy", str, "auto", "auto (DDP when there are several devices) or ddp",
          choices=("auto", "ddp"), tune=False),
    Param("precision", str, "32", "32-bit, or mixed precision (bf16-mixed; 16-mixed on GPU)",
          choices=("32", "bf16-mixed", "16-mixed"), tune=False),
)



def core_params_for(task: Task, dataset: str | None = None) -> tuple[Param, ...]:
    """The core parameters with the task's defaults and search ranges for `dataset` applied.

    A task knows what depth, width or batch size makes sense for its data (13 airline
    windows make a batch of 32 one update per epoch), so it may narrow the core ranges.
    """
    names = {p.name for p in CORE_PARAMS}
    defaults = task.defaults_for(dataset)
    search = task.search_for(dataset)
    for key in [*defaults, *search]:
        if key not in names:
            raise unknown_name(f"core hyperparameter (in task '{task.name}')", key, names)
    return tuple(
        Param(**{**asdict(p),
                 **({"default": p.coerce(defaults[p.name])} if p.name in defaults else {}),
                 **({"search": tuple(search[p.name])} if p.name in search else {})})
        for p in CORE_PARAMS
    )
