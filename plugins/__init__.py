"""The cell plugins shipped with seqbench (import name `seqbench_cells`)."""
