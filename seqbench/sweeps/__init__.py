"""Sweeps: fair Optuna studies per (task, dataset, cell), then multi-seed final runs.

Every cell gets the same search space (core ranges + its own declared extras + the task's),
the same number of trials, the same seeded sampler, pruner and epoch budget. The studies
live in one Optuna storage (`storage`), each with a versioned record of what the sweep
decided (`record`); trial and final runs are ordinary run records, trained once through one
cache (`cache`). The stages, one module each: `plan` (the validated options), `studies`
(checked and opened), `search`, `select`, `finals`, run by `runner` as job lists
(`workers`). docs/architecture.md walks through them.
"""
