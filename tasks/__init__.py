"""The task plugins shipped with seqbench (import name `seqbench_tasks`)."""
