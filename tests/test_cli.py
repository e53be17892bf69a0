"""End to end through the command line, on a tiny synthetic task installed as a plugin."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mido
import pytest

from seqbench import registry
from seqbench.cli import main


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def train(capsys, out: Path, *extra) -> Path:
    code, stdout, stderr = run_cli(
        capsys, "run", "--task", "toymusic", "--cell", "gru", "--output-dir", out, "--quiet", *extra
    )
    assert code == 0, stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert f"Run record: {run_dir}" in stdout
    return run_dir


def test_run_writes_a_complete_run_record(toy_task, tmp_path, capsys):
    run_dir = train(capsys, tmp_path / "runs", "--epochs", "3")
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "metrics.json", "history.csv",
                                                   "best.ckpt"}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["primary_metric"] == "test_nll" and metrics["direction"] == "minimize"
    assert metrics["parameters"] == 3 * (8 * 88 + 8 * 8 + 2 * 8) + 8 * 88 + 88  # GRU + head
    assert math.isfinite(metrics["test_nll"]) and math.isfinite(metrics["val_nll"])
    assert 0 <= metrics["test_frame_accuracy"] <= 1
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,seconds,lr,train_loss,val_nll")
    assert len(history) == 1 + 3
    config = json.loads((run_dir / "config.json").read_text())
    assert config["spec"]["hparams"]["epochs"] == 3
    assert config["command"].startswith("seqbench run --task toymusic")
    assert config["plugins"]["task"] == {"name": "toymusic", "distribution": "toy-music",
                                         "version": "1.0"}
    assert config["plugins"]["cell"]["distribution"] == "seqbench"


def test_same_seed_gives_identical_metrics_and_spec_reruns_reproduce(toy_task, tmp_path, capsys):
    first = train(capsys, tmp_path / "a", "--seed", "7")
    second = train(capsys, tmp_path / "b", "--seed", "7")
    rerun = train(capsys, tmp_path / "c", "--spec", first / "config.json")
    other = train(capsys, tmp_path / "d", "--seed", "8")

    def metrics(run):
        m = json.loads((run / "metrics.json").read_text())
        return {k: v for k, v in m.items() if k.startswith(("val_", "test_"))}

    assert metrics(first) == metrics(second) == metrics(rerun)
    assert metrics(first) != metrics(other)


def test_generate_writes_midi_files_with_notes(toy_task, tmp_path, capsys):
    run_dir = train(capsys, tmp_path / "runs")
    code, stdout, stderr = run_cli(capsys, "generate", run_dir, "--steps", "16", "--num", "2",
                                   "--output", tmp_path / "midi", "--set", "primer_steps=4")
    assert code == 0, stderr
    paths = [Path(line) for line in stdout.split()]
    assert [p.name for p in paths] == ["sample-1.mid", "sample-2.mid"]
    for path in paths:
        notes = [m for m in mido.MidiFile(path) if m.type == "note_on" and m.velocity > 0]
        assert notes, f"{path} has no notes"


def test_generate_for_a_task_without_one_is_one_line_and_exit_code_2(
        toy_task, tmp_path, capsys, monkeypatch):
    run_dir = train(capsys, tmp_path / "runs")
    monkeypatch.setattr(registry.get_task(toy_task), "generate", None)
    code, _, stderr = run_cli(capsys, "generate", run_dir)
    assert code == 2
    assert stderr.strip() == (f"error: task '{toy_task}' has nothing to generate; its test "
                              f"metrics are in {Path(run_dir) / 'metrics.json'}.")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cell", "lsmt"], "unknown cell 'lsmt'. Did you mean 'lstm'?"),
        (["--task", "toymusik"], "unknown task 'toymusik'. Did you mean 'toymusic'?"),
        (["--dataset", "tinyy"], "task 'toymusic' has no dataset 'tinyy'"),
        (["--set", "hiden_size=3"], "Did you mean 'hidden_size'?"),
        (["--set", "cell.nonlinearity=sigmoid"], "choose one of: tanh, relu"),
        (["--layers", "0"], "layers=0 is below the minimum 1"),
        (["--lr", "-1"], "below the minimum"),
        (["--set", "optimizer=adagrad"], "choose one of: adam, adamw, sgd, rmsprop"),
        (["--epochs", "many"], "Invalid value for '--epochs'"),
        (["--set", "novalue"], "--set expects KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(toy_task, tmp_path, capsys, args, message):
    base = {"--cell": "rnn", "--task": "toymusic"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["run", "--output-dir", tmp_path, "--quiet"]
    for flag, value in base.items():
        argv += [flag, value]
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--set":
            argv += [flag, value]
    code, _, stderr = run_cli(capsys, *argv)
    assert code == 2
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "runs").exists()


def test_a_diverging_run_is_a_clear_error_that_keeps_its_record(toy_task, tmp_path, capsys):
    code, _, stderr = run_cli(
        capsys, "run", "--task", "toymusic", "--cell", "rnn", "--output-dir", tmp_path / "runs",
        "--quiet", "--set", "optimizer=sgd", "--lr", "90", "--set", "clip=0", "--set", "cell.nonlinearity=relu",
        "--hidden-size", "64", "--epochs", "5",
    )
    assert code == 2
    assert "diverged" in stderr and len(stderr.strip().splitlines()) == 1
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "diverged"
    assert (run_dir / "config.json").is_file()


BROKEN = {"broken_cell.py": "raise ImportError('needs libfoo, which is not installed')\n"}


def test_a_broken_third_party_plugin_only_fails_commands_that_select_it(
    toy_task, install_plugins, tmp_path, capsys
):
    install_plugins("broken-cells", {"seqbench.cells": {"brokencell": "broken_cell:cell"}}, BROKEN)
    train(capsys, tmp_path / "runs", "--epochs", "1")

    code, stdout, _ = run_cli(capsys, "list")
    assert code == 0
    flat = " ".join(stdout.split())
    assert "brokencell" in flat and "broken-cells 1.0" in flat and "libfoo" in flat

    code, _, stderr = run_cli(capsys, "run", "--task", "toymusic", "--cell", "brokencell")
    assert code == 2
    assert "cell plugin 'brokencell' from broken-cells 1.0 failed to load: ImportError" in stderr


def test_a_plugin_exporting_the_wrong_object_is_reported(install_plugins, capsys):
    install_plugins("odd-cells", {"seqbench.cells": {"odd": "odd_cell:cell"}},
                    {"odd_cell.py": "cell = 42\n"})
    code, stdout, _ = run_cli(capsys, "list")
    assert code == 0
    assert "not a seqbench.Cell" in " ".join(stdout.split())


def test_help_does_not_import_torch():
    import subprocess
    import sys

    probe = "import sys; from seqbench.cli import main; main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False")


@pytest.mark.realdata
def test_lstm_on_real_jsb_chorales_end_to_end(real_data_dir, tmp_path, capsys):
    code, stdout, stderr = run_cli(
        capsys, "run", "--cell", "lstm", "--task", "music", "--dataset", "jsb", "--epochs", "1",
        "--hidden-size", "32", "--data-dir", real_data_dir, "--output-dir", tmp_path, "--quiet",
    )
    assert code == 0, stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split_sizes"] == {"train": 229, "valid": 76, "test": 77}
    # One epoch from scratch sits between the uniform guess (88 ln 2 = 61) and the ~8.5 of a
    # tuned model (Chung et al. 2014).
    assert 8.0 < metrics["test_nll"] < 61.0
    code, stdout, stderr = run_cli(capsys, "generate", run_dir, "--data-dir", real_data_dir,
                                   "--steps", "32")
    assert code == 0, stderr
    (path,) = [Path(line) for line in stdout.split()]
    assert any(m.type == "note_on" for m in mido.MidiFile(path))


#: Options that are hyperparameters (the API function's keyword settings), by command.
SETTING_OPTIONS = {"run": {"settings", "epochs", "hidden_size", "layers", "lr", "batch_size",
                           "devices", "num_nodes", "strategy", "precision"},
                   "sweep": {"settings", "epochs"}, "data": {"settings"},
                   "generate": {"settings", "steps", "temperature", "seed", "num", "horizon",
                                "inputs"}}
#: Options named in the plural for the setting they fill (`--input A --input B` is input=A,B).
SETTING_NAMES = {"inputs": "input"}
#: Where Python says it otherwise: `--quiet` is `progress=False`; the subcommand of
#: `seqbench new` is `new(kind=...)`.
RENAMED = {("run", "quiet"): "progress"}
#: Flags spelled otherwise than their parameter, each listed in the README ("From Python").
FLAG_SPELLINGS = {("generate", "output"): "out_dir", ("export", "output"): "out",
                  ("sweep", "max_time"): "max_seconds", ("new cell", "dir"): "directory",
                  ("new task", "dir"): "directory"}
IMPLIED = {"new cell": {"kind"}, "new task": {"kind"},
           "suite check": {"progress"}}  # the command prints each dataset as it loads


def test_every_command_is_one_api_function_and_every_option_one_of_its_parameters():
    """The command line is a thin shell: each command calls the API function of its name,
    every option is a parameter of that function with the same default (or one of its
    keyword settings), and every parameter is an option. A notebook and the command line
    cannot drift apart (a smaller default budget in `sb.sweep` once gave notebook users 20
    trials and 3 seeds, not 30 and 5)."""
    import inspect

    import typer

    import seqbench as sb
    from seqbench import cli
    from seqbench.core_params import CORE_PARAMS

    def commands(command, path: tuple[str, ...] = ()):
        if hasattr(command, "commands"):  # a group (typer's click, vendored or not)
            for name, sub in command.commands.items():
                yield from commands(sub, (*path, name))
        else:
            yield " ".join(path), command

    api = {"run": sb.run, "sweep": sb.sweep, "status": sb.status, "report": sb.report,
           "publish": sb.publish, "data": sb.data, "list": sb.list, "generate": sb.generate,
           "export": sb.export, "new cell": sb.new, "new task": sb.new, "suite list": sb.suites,
           "suite show": sb.suite_plan, "suite check": sb.suite_check, "suite run": sb.suite,
           "suite status": sb.suite_status}
    found = dict(commands(typer.main.get_command(cli.app)))
    assert sorted(found) == sorted(api)
    generate_options = {p.name for entry in registry.plugins("task").values() if entry.plugin
                        for p in entry.plugin.generate_params}
    for path, command in found.items():
        parameters = inspect.signature(api[path]).parameters
        keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        named = set()
        for option in command.params:
            if option.name in SETTING_OPTIONS.get(path, ()):
                assert keywords, f"sb.{api[path].__name__} takes no settings (seqbench {path})"
                assert option.name == "settings" or SETTING_NAMES.get(option.name, option.name) in (
                    generate_options if path == "generate" else {p.name for p in CORE_PARAMS})
                continue
            flag = max(option.opts, key=len).lstrip("-").replace("-", "_")
            assert FLAG_SPELLINGS.get((path, flag), flag) == option.name or (
                (path, flag) in RENAMED), (
                f"seqbench {path} {max(option.opts, key=len)} is {option.name}= in Python: "
                "list it in FLAG_SPELLINGS and the README")
            name = RENAMED.get((path, option.name), option.name)
            assert name in parameters, f"seqbench {path} --{option.name}: no such parameter"
            named.add(name)
            if name == option.name and not option.required:
                assert str(parameters[name].default) == str(option.default), (path, name)
        python_only = {name for name, p in parameters.items()
                       if p.kind is not inspect.Parameter.VAR_KEYWORD} - named
        assert python_only == IMPLIED.get(path, set()), f"seqbench {path} lacks {python_only}"
