"""The benchmark suites seqbench ships (installed as `seqbench_suites`).

Each `*.toml` file here is one suite: the datasets a published comparison covers, each
with its task, budget and the reason it is in (format: `seqbench/benchsuite/spec.py`).
`epoch-seconds.toml` holds the per-epoch times, measured on a named machine, that
`seqbench suite list` estimates every suite's cost from. No code lives here.
"""
