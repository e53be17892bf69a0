#!/usr/bin/env bash
# CI for the example plugin distributions under examples/: each installs on its own (with
# no change to seqbench), passes its own tests (seqbench's conformance kit among them) and
# trains through `seqbench run`, a plugin cell on a built-in task and a built-in cell on a
# plugin task;
# then the same for a freshly scaffolded cell and task.
# Run by .ci/run after the main test suite, in the same virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
for example in examples/*/; do
  .venv/bin/pip install -e "$example"
  (cd "$example" && ../../.venv/bin/python -m pytest -q)
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# The scaffolds (issue 20): `seqbench new` output installs and passes its own tests as is.
.venv/bin/seqbench new cell scaffoldcell --dir "$out/seqbench-scaffoldcell"
.venv/bin/seqbench new task scaffoldtask --dir "$out/seqbench-scaffoldtask"
.venv/bin/pip install --no-deps -e "$out/seqbench-scaffoldcell" -e "$out/seqbench-scaffoldtask"
(cd "$out" && "$OLDPWD/.venv/bin/python" -m pytest -q seqbench-scaffoldcell seqbench-scaffoldtask)
.venv/bin/pip uninstall -y seqbench-scaffoldcell seqbench-scaffoldtask
.venv/bin/seqbench list
# a built-in cell on a plugin task (minLSTM's parallel scan on the adding problem)
.venv/bin/seqbench run --cell minlstm --task adding --epochs 1 --set task.length=50 \
  --set task.train_size=500 --set task.eval_size=100 --output-dir "$out" --quiet
# a step cell from a plugin: its time loop compiled by seqbench (once per process)
.venv/bin/seqbench run --cell lstm-cifg --task music --epochs 1 --output-dir "$out" --quiet
