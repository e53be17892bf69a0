"""The command-line details a newcomer tripped on: brackets kept in --help, shell completion
of cell, task and dataset names, `generate --help` naming every task's options, `list`
readable at 80 columns, `--resume` of a finished run refused before Lightning loads, and a
sweep that says how many configurations it re-runs rather than "the top 3" of two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqbench import registry
from seqbench.cli import main
from seqbench.config import build_spec
from seqbench.runs import METRICS, write_config

ROOT = Path(__file__).resolve().parents[1]


def shell(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`seqbench` in a fresh interpreter (what a shell starts), from this tree."""
    code = ("import sys; from seqbench.cli import app, main; "
            "sys.exit(app(prog_name='seqbench') if len(sys.argv) < 2 else main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120)


def complete(words: str) -> list[str]:
    """What bash completion offers for the last word of `words` (click's protocol)."""
    done = shell(env={"_SEQBENCH_COMPLETE": "complete_bash", "COMP_WORDS": words,
                      "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    return done.stdout.split()


def test_help_keeps_the_brackets_of_pip_extras(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # so no extra is wrapped onto two lines
    for command, extras in (("run", ("tensorboard", "mlflow")), ("sweep", ("tensorboard",)),
                            ("export", ("export",))):
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        for extra in extras:
            assert f"'seqbench[{extra}]'" in out, (command, extra)


def test_completion_offers_installed_cells_tasks_and_the_tasks_datasets():
    assert {"gru", "lstm", "rnn", "mingru"} <= set(complete("seqbench run --cell "))
    assert complete("seqbench run --cell gr") == ["gru"]
    assert complete("seqbench sweep --task sp") == ["speech"]
    assert complete("seqbench data --task speech --dataset japa") == ["japanese-vowels"]
    assert complete("seqbench run --task music --dataset ") == list(
        registry.get_task("music").datasets)
    assert complete("seqbench sweep --task speech --cells lstm,g") == ["lstm,gru"]


def test_generate_help_lists_every_tasks_own_options(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    for name, entry in registry.plugins("task").items():
        assert f"{name}: " in out
        for param in entry.plugin.generate_params:
            assert f"{param.name}={param.default!r}" in out
    assert "prompt='the'" in out and "top_k=0" in out and "primer_steps=8" in out


def test_list_at_80_columns_keeps_every_name_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(out.replace(",", " ").replace("*", " ").split())
    for kind in ("cell", "task"):
        for name, entry in registry.plugins(kind).items():
            assert name in words
            if kind == "task":
                missing = set(entry.plugin.datasets) - words
                assert not missing, f"{name}'s datasets cut in the listing: {missing}"


def test_resuming_a_finished_run_is_refused_before_lightning_loads(tmp_path):
    write_config(tmp_path, build_spec("speech", "gru", None, {}))
    (tmp_path / METRICS).write_text(json.dumps({"status": "completed"}))
    probe = ("import sys; from seqbench.cli import main; code = main(sys.argv[1:]); "
             "print(code, 'lightning' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe, "run", "--resume", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["2", "False"]
    assert done.stderr.strip() == (f"error: run '{tmp_path}' has already ended (completed); "
                                   "there is nothing to resume.")


@pytest.mark.parametrize("trials, says", [
    (2, "selection: 2 configurations per cell"),
    (1, "selection: nothing to re-run (fewer than two completed configurations)"),
])
def test_a_sweep_says_how_many_configurations_it_reruns(toy_task, tmp_path, capsys, trials,
                                                        says):
    code = main(["sweep", "--task", "toymusic", "--cells", "gru", "--trials", str(trials),
                 "--top", "3", "--seeds", "1", "--rerun-seeds", "1", "--epochs", "1",
                 "--pruner", "none", "--output-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    printed = captured.out + captured.err  # the stage lines go to stderr with the progress
    assert says in printed and "the top 3" not in printed
