"""Data read wrongly or silently, and the small things a user trips on (issue 38).

A test file whose columns come in another order, values near float32's largest, files too
short to use, paths with line breaks or spaces, a cache folder that cannot be written, a
large text corpus, an explicit option given with `--spec`, a report without `--study`, and
the Python API given arguments of the wrong type.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
from test_user_data import labelled, write_long_csv, write_midi

import seqbench as sb
from seqbench.cli import main
from seqbench.errors import SeqbenchError

FAST = ["--epochs", "1", "--hidden-size", "4", "--quiet"]


def one_error(capsys, argv) -> str:
    """Run `argv`; assert exit 2 and exactly one line on stderr, an `error:` line; return it."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    return lines[0]


# --- columns matched by name ------------------------------------------------------------


def swapped(path: Path, sequences) -> Path:
    """The same sequences with the feature columns written y before x."""
    lines = ["sequence,label,y,x"] + [f"{key},{label},{b},{a}" for key, label, frames in
                                      sequences for a, b in frames]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_test_file_with_its_feature_columns_in_another_order_is_read_by_name(tmp_path):
    from seqbench.datacheck import load

    train = write_long_csv(tmp_path / "train.csv", labelled(30))
    test = labelled(10, seed=1)
    same = write_long_csv(tmp_path / "test.csv", test)
    other_order = swapped(tmp_path / "test-yx.csv", test)
    read = {name: load("speech", "csv", {"path": str(train), "test": str(path)}, None)[1]
            for name, path in (("same", same), ("other order", other_order))}
    for a, b in zip(read["same"].sequences["test"], read["other order"].sequences["test"]):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_test_file_with_other_feature_columns_is_one_line(tmp_path, capsys):
    train = write_long_csv(tmp_path / "train.csv", labelled(30))
    test = write_long_csv(tmp_path / "test.csv", labelled(10, seed=1), header="sequence,label,x,z")
    line = one_error(capsys, ["data", "--task", "speech", "--dataset", "csv", "--set",
                              f"path={train}", "--set", f"test={test}"])
    assert f"'{test}' lacks the feature column 'y' of the training file '{train}'" in line


# --- numbers a result can be ------------------------------------------------------------


def test_values_near_the_float32_maximum_give_finite_metrics(tmp_path, capsys):
    path = tmp_path / "huge.csv"
    rng = np.random.default_rng(0)
    values = 1e38 * (1.5 + np.sin(np.arange(200) / 5) + 0.1 * rng.normal(size=200))
    path.write_text("t,target\n" + "".join(f"{i},{v!r}\n" for i, v in enumerate(values)))
    assert main(["run", "--task", "forecasting", "--dataset", "csv", "--cell", "gru",
                 "--set", f"csv={path}", "--set", "target=target", *FAST,
                 "--output-dir", str(tmp_path / "runs")]) == 0, capsys.readouterr().err
    (metrics,) = (tmp_path / "runs").glob("*/metrics.json")
    results = json.loads(metrics.read_text())
    numbers = [v for k, v in results.items() if k.startswith("test_") and isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers), results


def test_a_non_finite_test_metric_fails_the_run_in_one_line(tmp_path):
    from seqbench.runs import METRICS, refuse_non_finite

    with pytest.raises(SeqbenchError, match="test_mse is inf, not a number a result can be"):
        refuse_non_finite({"test_mse": math.inf, "test_mae": 1.0}, tmp_path)
    assert json.loads((tmp_path / METRICS).read_text())["status"] == "failed"
    refuse_non_finite({"test_mse": 2.0, "val_mse": math.nan}, tmp_path)  # not a result


# --- files too short, exactly one line ----------------------------------------------------


def test_a_one_row_forecasting_csv_is_one_line_naming_it(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text("t,target\n1,5\n")
    line = one_error(capsys, ["run", "--task", "forecasting", "--dataset", "csv", "--cell",
                              "gru", "--set", f"csv={path}", "--set", "target=target", *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert f"'{path}'" in line and "do not fit" in line


@pytest.mark.parametrize("case", ["one file", "every file bad", "every file bad, skipped"])
def test_a_midi_folder_with_one_file_or_none_usable_is_one_line(case, tmp_path, capsys):
    folder = tmp_path / "midi"
    if case == "one file":
        write_midi(folder / "only.mid", [60, 62, 64, 65, 67] * 4)
    else:
        folder.mkdir()
        for name in ("a.mid", "b.mid"):
            (folder / name).write_bytes(b"not a midi file")
    skip = ["--set", "skip_bad=true"] if case.endswith("skipped") else []
    line = one_error(capsys, ["run", "--task", "music", "--dataset", "midi", "--cell", "gru",
                              "--set", f"path={folder}", *skip, *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert str(folder) in line


def test_a_path_with_a_line_break_is_named_in_the_one_error_line(tmp_path, capsys):
    folder = tmp_path / "new\nline"
    folder.mkdir()
    path = folder / "one.csv"
    path.write_text("t,target\n1,5\n")
    line = one_error(capsys, ["run", "--task", "forecasting", "--dataset", "csv", "--cell",
                              "gru", "--set", f"csv={path}", "--set", "target=target", *FAST,
                              "--output-dir", tmp_path / "runs"])
    assert str(path).replace("\n", "\\n") in line


# --- paths with spaces: the recorded commands run as printed ------------------------------


def test_recorded_and_suggested_commands_quote_paths_with_spaces(tmp_path, capsys):
    folder = tmp_path / "my data"
    folder.mkdir()
    path = folder / "air line.csv"
    rows = "".join(f"{i},{100 + 10 * math.sin(i / 3) + i}\n" for i in range(120))
    path.write_text("t,target\n" + rows)
    out = tmp_path / "run records"
    assert main(["run", "--task", "forecasting", "--dataset", "csv", "--cell", "gru",
                 "--set", f"csv={path}", "--set", "target=target", *FAST,
                 "--output-dir", str(out)]) == 0
    (run_dir,) = out.iterdir()
    command = shlex.split(json.loads((run_dir / "config.json").read_text())["command"])
    assert command[:2] == ["seqbench", "run"]
    again = tmp_path / "again"
    assert main([*command[1:], "--epochs", "1", "--quiet", "--output-dir", str(again)]) == 0
    assert json.loads(next(again.glob("*/config.json")).read_text())["spec"]["task_params"][
        "csv"] == str(path)


# --- a cache folder that cannot be written ------------------------------------------------


def test_a_cache_that_cannot_be_written_is_a_note_and_leaves_no_partial_file(tmp_path,
                                                                              capsys):
    from seqbench.data import cached

    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    assert cached(blocker / "sub" / "x.pkl", lambda: {"value": 1}) == {"value": 1}
    assert "could not write the cache" in capsys.readouterr().err
    assert not list(tmp_path.rglob(".partial-*"))


# --- small things -------------------------------------------------------------------------


def test_an_explicit_seed_or_device_overrides_the_spec_even_when_zero(tmp_path, capsys):
    from seqbench.runs import read_spec

    first = tmp_path / "first"
    assert main(["run", "--task", "speech", "--cell", "gru", "--seed", "5", "--device", "cpu",
                 *FAST, "--output-dir", str(first)]) == 0
    (recorded,) = first.iterdir()
    again = tmp_path / "again"
    assert main(["run", "--spec", str(recorded), "--seed", "0", "--quiet",
                 "--output-dir", str(again)]) == 0
    spec = read_spec(next(again.iterdir()))
    assert spec.seed == 0 and spec.device == "cpu"  # seed overridden, device kept


@pytest.mark.parametrize("call, fragment", [
    (lambda t: sb.sweep("speech", ["gru"], storage=5, output_dir=t), "storage must be a path"),
    (lambda t: sb.sweep("speech", ["gru"], jobs="2", output_dir=t),
     "jobs must be a whole number (got '2')"),
    (lambda t: sb.sweep("speech", ["gru"], output_dir=None), "output_dir must be a path"),
    (lambda t: sb.sweep("speech", ["gru"], output_dir=t, data_dir=3), "data_dir must be a path"),
    (lambda t: sb.run("speech", "gru", output_dir=None, epochs=1), "output_dir must be a path"),
    (lambda t: sb.run("speech", "gru", data_dir=3, output_dir=t), "data_dir must be a path"),
    (lambda t: sb.load(5), "run_dir must be a path"),
])
def test_the_python_api_checks_its_arguments_at_the_boundary(call, fragment, tmp_path):
    with pytest.raises(SeqbenchError) as error:
        call(tmp_path)
    assert fragment in str(error.value)
