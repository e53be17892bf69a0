#!/bin/bash
# Queue a sweep on a SLURM cluster: the search array, then (once every array task has
# ended, whatever its exit code) the one job that runs selection and finals.
#   export SEQBENCH_STORAGE_URL=postgresql://user:password@host/db
#   STUDY=music-2027 SWEEP_DIR=/shared/sweeps SWEEP_ARGS="--task music --cells lstm,gru,rnn --trials 60" \
#     scripts/slurm/submit.sh
set -euo pipefail
here=$(dirname "$0")
mkdir -p logs
export STUDY SWEEP_DIR SWEEP_ARGS SEQBENCH_STORAGE_URL
array=$(sbatch --parsable --export=ALL "$here/search-array.sbatch")
sbatch --export=ALL --dependency="afterany:${array}" "$here/finish.sbatch"
