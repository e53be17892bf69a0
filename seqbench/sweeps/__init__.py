"""Sweeps: fair Optuna studies per (task, dataset, cell), then multi-seed final runs.

Every cell gets the same search space (core ranges + its own declared extras + the task's),
the same number of trials, the same seeded sampler, pruner and epoch budget. The studies
live in one Optuna storage; trial and final runs are ordinary run records.
"""
