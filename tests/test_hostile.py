"""Hostile input: every way a user can hand seqbench something wrong, and interrupts.

Each bad-input case must give exit code 2 and exactly one `error:` line that names the
problem, with no traceback, and must leave every existing file as it was: a run folder and
a sweep storage made before the battery are hashed around every case ("nothing lost").
Ctrl-C must exit 130 with one line saying what was kept; SIGKILL must lose nothing that was
already written. Most cases fail before any training, so the battery is fast.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from conftest import TOY_TASK
from test_music_data import write_division, write_one_note
from test_sweep import postgres_url, wait_for  # noqa: F401 (a fixture, and a helper)

from seqbench import registry
from seqbench.cli import main
from seqbench.params import MAX_SEED
from seqbench.sweeps.storage import (SECRET_ENV, STORAGE_ENV, connect_url, open_storage,
                                     redact, storage_url)
from seqbench_tasks.music.pianoroll import MAX_BEATS

SECRET = "s3cr3t-Pa55word"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A toy task plugin, one finished run and one sweep storage, made once per module."""
    root = tmp_path_factory.mktemp("world")
    site = root / "site"
    info = site / "toy_music-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-music\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[seqbench.tasks]\ntoymusic = toy_music:task\n")
    (site / "toy_music.py").write_text(textwrap.dedent(TOY_TASK))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        patch.setenv("PYTHONPATH", os.pathsep.join([str(site), *sys.path]))
        patch.setenv("SEQBENCH_CACHE_DIR", str(root / "cache"))
        registry.discover.cache_clear()
        data = root / "data"
        data.mkdir()
        assert main(["run", "--task", "toymusic", "--cell", "gru", "--quiet",
                     "--output-dir", str(data / "runs")]) == 0
        assert main(["sweep", "--task", "toymusic", "--cells", "gru", "--trials", "2",
                     "--seeds", "1", "--epochs", "2", "--output-dir", str(data / "sweeps")]) == 0
        (run_dir,) = (data / "runs").iterdir()
        yield {"root": root, "data": data, "run": run_dir,
               "journal": data / "sweeps" / "sweeps.journal", "file": data / "a-file.txt"}
    registry.discover.cache_clear()


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def untouched(world, capsys):
    """Fail the test if any existing run folder or storage changed."""
    world["file"].write_text("not a folder\n")
    before = fingerprint(world["data"])
    yield
    assert fingerprint(world["data"]) == before, "an existing file was changed"


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def broken_run(world, tmp: Path, damage) -> Path:
    """A copy of the finished run with `damage(run_dir)` applied."""
    run_dir = tmp / "broken-run"
    shutil.copytree(world["run"], run_dir)
    damage(run_dir)
    return run_dir


def wrong_shapes(run_dir: Path) -> None:
    config = json.loads((run_dir / "config.json").read_text())
    config["spec"]["hparams"]["hidden_size"] = 9
    (run_dir / "config.json").write_text(json.dumps(config))


def csv_args(path: Path) -> list[str]:
    return ["run", "--task", "forecasting", "--dataset", "csv", "--cell", "gru", "--quiet",
            "--set", f"csv={path}", "--set", "target=target", "--output-dir"]


FILE, BINARY = "a-file.txt", bytes(random.Random(0).randrange(256) for _ in range(512))
RUN = ["run", "--task", "toymusic", "--cell", "gru", "--quiet"]
SWEEP = ["sweep", "--task", "toymusic", "--cells", "gru", "--trials", "1", "--seeds", "1"]

# name -> (function(world, tmp) -> argv, fragment the one error line must contain)
CASES = {
    "seed -1": (lambda w, t: [*RUN, "--seed", "-1", "--output-dir", t], "--seed"),
    "huge seed": (lambda w, t: [*RUN, "--seed", str(2**40), "--output-dir", t], "--seed"),
    "run output is a file": (lambda w, t: [*RUN, "--output-dir", w["file"]], "is a file"),
    "run output under a file": (lambda w, t: [*RUN, "--output-dir", w["file"] / "x"],
                                "lies under the file"),
    "data dir is a file": (lambda w, t: [*RUN, "--data-dir", w["file"], "--output-dir", t],
                           "is a file"),
    "spec invalid JSON": (lambda w, t: [*RUN, "--spec", write(t / "s.json", "{nope"),
                                        "--output-dir", t], "not valid JSON"),
    "spec empty": (lambda w, t: [*RUN, "--spec", write(t / "s.json", ""), "--output-dir", t],
                   "not valid JSON"),
    "spec binary": (lambda w, t: [*RUN, "--spec", write(t / "s.json", BINARY),
                                  "--output-dir", t], "not a text file"),
    "spec JSON list": (lambda w, t: [*RUN, "--spec", write(t / "s.json", "[1, 2]"),
                                     "--output-dir", t], "not an object"),
    "spec without spec": (lambda w, t: [*RUN, "--spec", write(t / "s.json", '{"a": 1}'),
                                        "--output-dir", t], 'no "spec" object'),
    "spec without hparams": (lambda w, t: [*RUN, "--spec", write(t / "s.json", json.dumps(
        {"spec": {"task": "toymusic", "dataset": "tiny", "cell": "gru"}})), "--output-dir", t],
        "spec.hparams is missing"),
    "spec is a folder without config": (lambda w, t: [*RUN, "--spec", w["data"],
                                                      "--output-dir", t], "without a config"),
    "unknown dataset": (lambda w, t: [*RUN, "--dataset", "tinyy", "--output-dir", t],
                        "task 'toymusic' has no dataset 'tinyy'"),
    "CSV binary": (lambda w, t: [*csv_args(write(t / "d.csv", BINARY)), t], "not UTF-8"),
    "CSV Latin-1": (lambda w, t: [*csv_args(write(t / "d.csv", "date,target\n1,caf\xe9\n".encode(
        "latin-1"))), t], "not UTF-8"),
    "CSV is a folder": (lambda w, t: [*csv_args(w["data"]), t], "is a folder"),
    "CSV unclosed quote": (lambda w, t: [*csv_args(write(t / "d.csv", 'date,target\n1,"2\n2,3\n')),
                                         t], "unclosed quote"),
    "CSV ragged rows": (lambda w, t: [*csv_args(write(t / "d.csv", "date,target\n1,2,3\n2,3\n")),
                                      t], "line 2 has 3 fields"),
    "CSV infinity": (lambda w, t: [*csv_args(write(t / "d.csv", "date,target\n" + "".join(
        f"{i},{'inf' if i == 5 else i}\n" for i in range(200)))), t], "infinite value"),
    "sweep output is a file": (lambda w, t: [*SWEEP, "--output-dir", w["file"]], "is a file"),
    "sweep output under a file": (lambda w, t: [*SWEEP, "--output-dir", w["file"] / "x"],
                                  "lies under the file"),
    "sweep negative max-time": (lambda w, t: [*SWEEP, "--max-time", "-5", "--output-dir", t],
                                "--max-time must be a positive"),
    "sweep negative param budget": (lambda w, t: [*SWEEP, "--param-budget", "-100",
                                                  "--output-dir", t], "--param-budget"),
    "sweep zero param budget": (lambda w, t: [*SWEEP, "--param-budget", "0", "--output-dir", t],
                                "--param-budget"),
    "sweep on a corrupt journal": (lambda w, t: [*SWEEP, "--storage", write(
        t / "j", w["journal"].read_bytes().replace(b"\n", b"\nGARBAGE\n", 1)), "--output-dir", t],
        "corrupt at line 2"),
    "sweep on a binary journal": (lambda w, t: [*SWEEP, "--storage", write(t / "j", BINARY + b"\n"),
                                                "--output-dir", t], "corrupt at line 1"),
    "sweep storage is a folder": (lambda w, t: [*SWEEP, "--storage", w["data"], "--output-dir", t],
                                  "is a folder"),
    "sweep storage is /dev/null": (lambda w, t: [*SWEEP, "--storage", "/dev/null",
                                                 "--output-dir", t], "is not a regular file"),
    "sweep on a journal record missing a field": (lambda w, t: [*SWEEP, "--storage", journal_with(
        w, t, lambda records: records[1].pop("study_id")), "--output-dir", t],
        "corrupt at line 2 (operation 2 without its 'study_id' field)"),
    "report on a journal record missing a field": (lambda w, t: ["report", "--storage",
        journal_with(w, t, lambda records: records[0].pop("study_name")), "--output-dir", t],
        "corrupt at line 1 (operation 0 without its 'study_name' field)"),
    "sweep on an unknown journal operation": (lambda w, t: [*SWEEP, "--storage", journal_with(
        w, t, lambda records: records[2].update(op_code=42)), "--output-dir", t],
        "corrupt at line 3 (unknown operation 42)"),
    "report on an unknown journal operation": (lambda w, t: ["report", "--storage",
        journal_with(w, t, lambda records: records.append({"op_code": "x", "worker_id": "w"})),
        "--output-dir", t], "(unknown operation 'x')"),
    "report without --study on a storage of other sweeps": (lambda w, t: [
        "report", "--storage", journal_with(w, t, lambda records: [
            r.update(study_name=r["study_name"].replace("seqbench/", "mine/"))
            for r in records if "study_name" in r]), "--output-dir", t],
        "its sweeps are mine: pick them with --study NAME"),
    "sweep on a trial of a study the journal lacks": (lambda w, t: [
        *SWEEP, "--storage", journal_with(w, t, lambda records: records.append(
            {"op_code": 4, "worker_id": "w", "study_id": 7, "datetime_start": None})),
        "--output-dir", t], "(study 7, which no earlier line creates)"),
    "report on a record of a trial the journal lacks": (lambda w, t: [
        "report", "--storage", journal_with(w, t, lambda records: records.insert(2, {
            "op_code": 8, "worker_id": "w", "trial_id": 99, "user_attr": {"a": 1}})),
        "--output-dir", t], "corrupt at line 3 (trial 99, which no earlier line creates)"),
    "report output is a file": (lambda w, t: ["report", "--storage", w["journal"],
                                              "--output-dir", w["file"]], "is a file"),
    "report output under a file": (lambda w, t: ["report", "--storage", w["journal"],
                                                 "--output-dir", w["file"] / "x"], "under the file"),
    "report on a corrupt journal": (lambda w, t: ["report", "--storage", write(
        t / "j", w["journal"].read_bytes().replace(b"\n", b"\n{}\n", 2)), "--output-dir", t],
        "corrupt at line 2"),
    "report on a binary journal": (lambda w, t: ["report", "--storage", write(t / "j", BINARY),
                                                 "--output-dir", t / "r"], "corrupt at line 1"),
    "generate output is a file": (lambda w, t: ["generate", w["run"], "--output", w["file"]],
                                  "is a file"),
    "generate output under a file": (lambda w, t: ["generate", w["run"], "--output",
                                                   w["file"] / "x"], "under the file"),
    "generate on a file": (lambda w, t: ["generate", w["file"]], "not a run folder"),
    "generate empty checkpoint": (lambda w, t: ["generate", broken_run(
        w, t, lambda r: write(r / "best.ckpt", b"")), "--output", t / "g"], "not a readable"),
    "generate truncated checkpoint": (lambda w, t: ["generate", broken_run(
        w, t, lambda r: write(r / "best.ckpt", (r / "best.ckpt").read_bytes()[:3000])),
        "--output", t / "g"], "not a readable"),
    "generate random checkpoint": (lambda w, t: ["generate", broken_run(
        w, t, lambda r: write(r / "best.ckpt", BINARY)), "--output", t / "g"], "not a readable"),
    "generate checkpoint of other shapes": (lambda w, t: ["generate", broken_run(
        w, t, wrong_shapes), "--output", t / "g"], "does not fit the model"),
    "generate corrupt config": (lambda w, t: ["generate", broken_run(
        w, t, lambda r: write(r / "config.json", '{"spec": ')), "--output", t / "g"],
        "not valid JSON"),
    "generate garbage MIDI primer": (lambda w, t: ["generate", w["run"], "--output", t / "g",
                                                   "--set", f"primer_midi={write(t / 'p.mid', b'MThd' + bytes([0, 0, 0, 6, 0, 1, 0, 1, 1, 224]) + b'MTrk' + BINARY[:64])}"],
                                     "cannot read MIDI file"),
    "generate with a folder as MIDI primer": (lambda w, t: [
        "generate", w["run"], "--output", t / "g", "--set", f"primer_midi={t}"],
        "is a folder; give a file."),
    "generate MIDI primer with 0 ticks per beat": (lambda w, t: [
        "generate", w["run"], "--output", t / "g", "--set",
        f"primer_midi={write_division(t / 'p.mid', bytes(2))}"], "0 ticks per beat"),
    "generate MIDI primer timed in SMPTE frames": (lambda w, t: [
        "generate", w["run"], "--output", t / "g", "--set",
        f"primer_midi={write_division(t / 'p.mid', bytes([0xE7, 0x28]))}"],
        "SMPTE time division is not supported"),
    "generate MIDI primer past the length cap": (lambda w, t: [
        "generate", w["run"], "--output", t / "g", "--set",
        f"primer_midi={write_one_note(t / 'p.mid', MAX_BEATS + 1)}"],
        f"{MAX_BEATS + 1:,} beats long"),
    "generate seed past 2**32 - 1": (lambda w, t: [
        "generate", w["run"], "--output", t / "g", "--set", "seed=99999999999999999999999"],
        "is above the maximum 4294967295"),
    "generate on an unknown device": (lambda w, t: ["generate", w["run"], "--output", t / "g",
                                                    "--device", "tpu"], "unknown device 'tpu'"),
    "threads past any machine": (lambda w, t: [*RUN, "--threads", "99999", "--output-dir", t],
                                 "--threads"),
    "setting without a name": (lambda w, t: [*RUN, "--set", "cell.=5", "--output-dir", t],
                               "names no hyperparameter"),
    "spec seed is text": (lambda w, t: [*RUN, "--spec", respec(w, t, seed="abc"),
                                        "--output-dir", t], "seed must be a whole number"),
    "spec seed is negative": (lambda w, t: [*RUN, "--spec", respec(w, t, seed=-5),
                                            "--output-dir", t], "seed=-5 is out of range"),
    "spec device is null": (lambda w, t: [*RUN, "--spec", respec(w, t, device=None),
                                          "--output-dir", t], "unknown device 'None'"),
    "resume from a corrupt resume point": (lambda w, t: [
        "run", "--quiet", "--resume", broken_run(w, t, stopped_with(BINARY))],
        "is not a readable checkpoint"),
    "resume from a resume point of other shapes": (lambda w, t: [
        "run", "--quiet", "--resume", broken_run(w, t, lambda r: (
            stopped_with(resume_point_of(w, t))(r), wrong_shapes(r)))], "does not fit the model"),
    "resume from a checkpoint without training state": (lambda w, t: [
        "run", "--quiet", "--resume", broken_run(w, t, stopped_with(
            (w["run"] / "best.ckpt").read_bytes()))], "is not a resume point"),
    "sweep on unreadable data": (lambda w, t: [
        "sweep", "--task", "forecasting", "--dataset", "csv", "--cells", "gru", "--trials", "1",
        "--seeds", "1", "--set", f"csv={write(t / 'd.csv', 'date,target')}",
        "--set", "target=target", "--output-dir", t], "no data rows"),
    "sweep param budget no model fits": (lambda w, t: [*SWEEP, "--param-budget", "1",
                                                       "--output-dir", t], "too small"),
    "sweep study name with a slash": (lambda w, t: [*SWEEP, "--study", "a/b", "--output-dir", t],
                                      "is not a usable name"),
    "sweep study name climbing out": (lambda w, t: [*SWEEP, "--study", "../../x",
                                                    "--output-dir", t], "is not a usable name"),
    "sweep resumed under other settings": (lambda w, t: [
        "sweep", "--task", "toymusic", "--cells", "gru", "--trials", "2", "--seeds", "1",
        "--epochs", "3", "--storage", w["journal"], "--output-dir", w["journal"].parent],
        "was run with other options"),
    "sweep storage is a dangling link": (lambda w, t: [*SWEEP, "--storage", dangling(t),
                                                       "--output-dir", t], "is a broken link"),
    "publish into the sweep's own folder": (lambda w, t: [
        "publish", "--study", "seqbench", "--storage", w["journal"], "--to",
        w["journal"].parent], "is the sweep's own folder"),
}


def respec(world, tmp: Path, **changes) -> Path:
    """The finished run's config.json with `changes` made to its spec."""
    config = json.loads((world["run"] / "config.json").read_text())
    config["spec"].update(changes)
    return write(tmp / "spec.json", json.dumps(config))


def journal_with(world, tmp: Path, edit) -> Path:
    """A copy of the sweep's journal with `edit(records)` applied to its parsed records."""
    records = [json.loads(line) for line in world["journal"].read_text().splitlines()]
    edit(records)
    return write(tmp / "edited.journal", "".join(json.dumps(r) + "\n" for r in records))


def dangling(tmp: Path) -> Path:
    link = tmp / "sweeps.journal"
    link.symlink_to(tmp / "gone" / "sweeps.journal")
    return link


def resume_point_of(world, tmp: Path) -> bytes:
    """A real resume point of the world's spec: a run stopped as Ctrl-C stops it, after one
    epoch, with its resume point written at once."""
    from lightning.pytorch.callbacks import Callback

    import seqbench.resume
    from seqbench.errors import Interrupted
    from seqbench.runs import read_spec
    from seqbench.train import train

    class StopAfterOneEpoch(Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                raise seqbench.resume.StopTraining

    run_dir = tmp / "stopped"
    with pytest.MonkeyPatch.context() as patch, pytest.raises(Interrupted):
        patch.setattr(seqbench.resume, "ASSUMED_FIRST_COST", 0.0)
        train(read_spec(world["run"]).with_settings({"epochs": 3}), run_dir=run_dir,
              show_progress=False, callbacks=[StopAfterOneEpoch()])
    return (run_dir / "resume.ckpt").read_bytes()


def stopped_with(resume_point: bytes):
    """Damage: the run looks stopped (no metrics) and its resume point is `resume_point`."""
    def damage(run_dir: Path) -> None:
        (run_dir / "metrics.json").unlink()
        write(run_dir / "resume.ckpt", resume_point)
    return damage


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case, world, untouched, tmp_path,
                                                          capsys):
    build, fragment = CASES[case]
    argv = [str(a) for a in build(world, tmp_path)]
    code = main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in out + err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere; permissions not testable")
@pytest.mark.parametrize("command", ["run", "sweep", "report"])
def test_an_unwritable_output_dir_is_one_line(command, world, untouched, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    argv = {"run": RUN, "sweep": SWEEP, "report": ["report", "--storage", str(world["journal"])]}
    assert main([*argv[command], "--output-dir", str(locked / "out")]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_run_records_are_world_readable_like_every_other_file(world):
    modes = {p.name: p.stat().st_mode & 0o777 for p in world["run"].iterdir()}
    assert modes["config.json"] == modes["metrics.json"] == modes["history.csv"]


# ---- storage: torn journals, passwords ----


def sweep_argv(out: Path, trials: int, *extra) -> list[str]:
    return [*SWEEP[:5], "--trials", str(trials), "--seeds", "1", "--pruner", "none",
            "--rerun-seeds", "0", "--output-dir", str(out), *(extra or ("--epochs", "2"))]


def test_the_report_command_a_sweep_suggests_works(world, tmp_path, capsys):
    """Copied as printed, spaces in the paths included (quoted as a shell reads them)."""
    out = tmp_path / "my sweeps"
    assert main(sweep_argv(out, 1)) == 0
    suggested = shlex.split(capsys.readouterr().out.split("tables: ")[1])
    assert suggested[:2] == ["seqbench", "report"] and suggested[-2] == "--output-dir"
    assert str(out / "sweeps.journal") in suggested
    assert main([*suggested[1:-1], str(tmp_path / "reports")]) == 0, capsys.readouterr().err


def test_progress_counts_batches_in_1_based_epochs_without_stray_bars(world, tmp_path, capsys,
                                                                     monkeypatch):
    """On a terminal (forced here: capsys is none, and off a terminal a plain line per epoch
    replaces the bars, tests/test_progress.py)."""
    import seqbench.console

    monkeypatch.setattr(seqbench.console.console, "_force_terminal", True)
    assert main([*RUN[:-1], "--epochs", "2", "--output-dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "4/4 batches" in err and "8/8 batches" in err, err
    assert "epoch 0" not in err and "Validation" not in err and "Testing" not in err, err


def test_a_torn_journal_is_cut_once_then_resumed_and_reported(world, tmp_path, capsys):
    out = tmp_path / "sweeps"
    assert main(sweep_argv(out, 2)) == 0
    journal = out / "sweeps.journal"
    study = "seqbench/toymusic/tiny/gru"
    kept = {t.number: t.value for t in optuna.load_study(
        study_name=study, storage=open_storage(str(journal))).trials}
    journal.write_bytes(journal.read_bytes() + b'{"op_code": 5, "worker_id": "x", "tri')
    capsys.readouterr()

    assert main(sweep_argv(out, 3)) == 0
    err = capsys.readouterr().err
    assert err.count("torn record") == 1
    trials = optuna.load_study(study_name=study, storage=open_storage(str(journal))).trials
    assert {t.number: t.value for t in trials if t.number in kept} == kept
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert main(["report", "--storage", str(journal), "--output-dir", str(tmp_path / "r")]) == 0
    assert "3/0/0" in (tmp_path / "r" / "toymusic-tiny" / "table.md").read_text()


def test_report_reads_every_intact_trial_of_a_torn_journal_without_changing_it(world, tmp_path,
                                                                                capsys):
    journal = tmp_path / "torn.journal"
    journal.write_bytes(world["journal"].read_bytes() + b'{"op_code": 1, "stu')
    before = journal.read_bytes()
    assert main(["report", "--storage", str(journal), "--output-dir", str(tmp_path / "r")]) == 0
    assert journal.read_bytes() == before
    assert "2/0/0" in (tmp_path / "r" / "toymusic-tiny" / "table.md").read_text()


@pytest.fixture
def storage_env(monkeypatch):
    """No storage URL in the environment before the test, and none left after it."""
    for name in (STORAGE_ENV, SECRET_ENV):
        monkeypatch.setenv(name, "")  # records the original, so it is restored after
        monkeypatch.delenv(name)


def test_storage_urls_are_redacted_and_the_password_travels_in_the_environment(storage_env,
                                                                                monkeypatch):
    url = f"postgresql://me:{SECRET}@db.example:5432/studies"
    shown = storage_url(url, Path("out"))
    assert shown == "postgresql://me:***@db.example:5432/studies" == redact(url)
    assert connect_url(shown) == url
    monkeypatch.delenv(SECRET_ENV)
    assert connect_url(shown) == "postgresql://me@db.example:5432/studies"  # PGPASSWORD, .pgpass
    monkeypatch.setenv(STORAGE_ENV, url)
    assert connect_url(shown) == url
    assert storage_url("runs/x.journal", Path("out")) == "runs/x.journal"


#: Every place a URL may carry a credential (issue 38): the user info (with an '@' in the
#: password, written %40), and libpq's password, sslpassword and passfile parameters.
SECRET_FORMS = {
    "user info": f"postgresql://me:{SECRET}@db.example:5432/studies",
    "@ in the password": f"postgresql://me:p%40{SECRET}@db.example:5432/studies",
    "password parameter": f"postgresql://me@db.example/studies?password={SECRET}",
    "sslpassword parameter": f"postgresql://me@db.example/studies?sslmode=require&"
                             f"sslpassword={SECRET}",
    "passfile parameter": f"postgresql://me@db.example/studies?passfile=/home/{SECRET}/.pgpass",
    "all at once": f"postgresql://me:{SECRET}@db.example/studies?password={SECRET}&"
                   f"sslpassword={SECRET}&passfile={SECRET}",
}


@pytest.mark.parametrize("form", list(SECRET_FORMS))
def test_every_credential_of_a_url_is_redacted_and_travels_in_the_environment(
        form, storage_env, monkeypatch):
    url = SECRET_FORMS[form]
    shown = storage_url(url, Path("out"))
    assert SECRET not in shown and "***" in shown and shown == redact(url) == redact(shown)
    assert connect_url(shown) == url
    monkeypatch.delenv(SECRET_ENV)
    bare = connect_url(shown)  # then PGPASSWORD, ~/.pgpass or a service file give it
    assert SECRET not in bare and "***" not in bare and "db.example" in bare


@pytest.mark.parametrize("url, fragment", [
    (f"postgresql://me:{SECRET}@127.0.0.1:fivefour/db", "its port is not a number"),
    (f"postgresql://me:p@{SECRET}@127.0.0.1/db", "write an '@' in the user name or password"),
    (f"postgresql://me:{SECRET}@[::1/db?password={SECRET}", "not a valid database URL"),
])
@pytest.mark.parametrize("command", ["sweep", "report"])
def test_a_malformed_storage_url_is_one_line_without_its_secret(url, fragment, command, world,
                                                                 storage_env, tmp_path, capsys):
    argv = [*SWEEP, "--output-dir", tmp_path] if command == "sweep" else [
        "report", "--output-dir", tmp_path]
    assert main([*map(str, argv), "--storage", url]) == 2
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert SECRET not in out + err and "Traceback" not in err


def with_credentials(base: str, form: str) -> str:
    """The loopback server's URL carrying SECRET in `form` (its server trusts loopback, so
    every form connects; what matters is where the secret shows up)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(base)
    if form in ("user info", "@ in the password"):
        password = SECRET if form == "user info" else f"p@{SECRET}"
        return parsed.set(password=password).render_as_string(hide_password=False)
    query = {"password parameter": {"password": SECRET},
             "sslpassword parameter": {"sslpassword": SECRET},
             "passfile parameter": {"passfile": f"/nonexistent/{SECRET}/.pgpass"},
             "all at once": {"password": SECRET, "sslpassword": SECRET}}[form]
    if form == "all at once":
        parsed = parsed.set(password=SECRET)
    return parsed.update_query_dict(query).render_as_string(hide_password=False)


@pytest.mark.parametrize("form", list(SECRET_FORMS))
def test_no_file_or_output_of_a_postgres_sweep_and_report_holds_the_password(
    form, world, tmp_path, capfd, postgres_url, storage_env
):
    url = with_credentials(postgres_url, form)
    study = f"pw{os.getpid()}x{time.time_ns()}"
    out, reports = tmp_path / "sweeps", tmp_path / "reports"
    assert main(sweep_argv(out, 1, "--epochs", "1", "--storage", url, "--study", study)) == 0
    assert main(["report", "--storage", url, "--study", study, "--output-dir", str(reports)]) == 0
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "***" in captured.out
    for path in [*out.rglob("*"), *reports.rglob("*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    storage = open_storage(url)
    loaded = optuna.load_study(study_name=f"{study}/toymusic/tiny/gru", storage=storage)
    stored = json.dumps([loaded.user_attrs, [t.user_attrs for t in loaded.trials]])
    assert SECRET not in stored and "***" in stored


# ---- interrupts and kills (real processes, real signals) ----


def start(argv: list[str], **env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "seqbench", *map(str, argv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def history_rows(out: Path) -> int:
    files = list(out.glob("*/history.csv"))
    return len(files[0].read_text().splitlines()) - 1 if files else 0


LONG_RUN = [*RUN, "--set", "epochs=100000", "--set", "patience=0"]


def test_ctrl_c_during_start_up_exits_130_with_one_line(world, untouched, tmp_path):
    process = start([*LONG_RUN, "--output-dir", tmp_path / "runs"])
    time.sleep(1.0)  # importing the CLI and torch
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    # A shell sees 130 either way: when an import inside torch saw the KeyboardInterrupt,
    # CPython ends the process with SIGINT itself after main() returned 130.
    assert process.returncode in (130, -signal.SIGINT), err
    assert len(err.strip().splitlines()) == 1 and err.startswith("interrupted"), err


def stopped_after_two_epochs(out: Path, sig: int) -> tuple[subprocess.Popen, str]:
    """A long run sent `sig` once it has written two epochs; (process, its stderr)."""
    process = start([*LONG_RUN, "--output-dir", out])
    try:
        wait_for(lambda: history_rows(out) >= 2, 120, "two epochs")
    finally:
        process.send_signal(sig)
    return process, process.communicate(timeout=120)[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_mid_training_exits_130_keeps_the_record_and_says_so(
        sig, world, untouched, tmp_path):
    """A batch scheduler stops a job with SIGTERM: the run stops as on Ctrl-C (exit 143
    before, with no word and no resume point)."""
    out = tmp_path / "runs"
    process, err = stopped_after_two_epochs(out, sig)
    assert process.returncode == 130, err
    (run_dir,) = out.iterdir()
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: ") and str(run_dir) in line and "--spec" in line, err
    assert "Traceback" not in err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs"] >= 2
    assert (run_dir / "best.ckpt").is_file()


def test_sigkill_mid_training_loses_nothing_already_written(world, untouched, tmp_path):
    out = tmp_path / "runs"
    stopped_after_two_epochs(out, signal.SIGKILL)
    (run_dir,) = out.iterdir()
    config = json.loads((run_dir / "config.json").read_text())  # complete, parseable
    assert config["spec"]["task"] == "toymusic"
    rows = (run_dir / "history.csv").read_text().splitlines()
    assert len(rows) >= 3 and all(row.count(",") == rows[0].count(",") for row in rows[1:])
    assert not list(run_dir.glob(".partial-*"))


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.mark.slow  # 28 s; a killed worker is in the default set in tests/test_suite_run.py
def test_two_jobs_one_worker_killed_loses_one_trial_and_completes_the_budget(world, tmp_path):
    out = tmp_path / "sweeps"
    # Trials of three seconds each, so that both workers are surely inside one at once.
    process = start(sweep_argv(out, 4, "--jobs", "2", "--max-time", "3", "--set",
                               "epochs=100000", "--set", "patience=0"))

    def running() -> list:
        try:
            trials = optuna.load_study(study_name="seqbench/toymusic/tiny/gru",
                                       storage=open_storage(str(out / "sweeps.journal"))).trials
        except (KeyError, FileNotFoundError):
            return []
        return [t for t in trials if t.state.name == "RUNNING"]

    try:
        wait_for(lambda: len(running()) == 2 or process.poll() is not None, 180,
                 "two running trials")
        assert process.poll() is None, process.communicate()
        victim = running()[0].user_attrs["worker"].rpartition(":")[2]
        assert int(victim) in children(process.pid)
        os.kill(int(victim), signal.SIGKILL)
        _, err = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert err.count("died (killed by SIGKILL)") == 1, err
    trials = optuna.load_study(study_name="seqbench/toymusic/tiny/gru",
                               storage=open_storage(str(out / "sweeps.journal"))).trials
    states = [t.state.name for t in trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 4, states
    assert len(list((out / "finals").rglob("metrics.json"))) == 1  # and the final ran


def test_ctrl_c_mid_sweep_exits_130_and_names_the_storage_to_resume_from(world, tmp_path):
    out = tmp_path / "sweeps"
    process = start(sweep_argv(out, 3, "--set", "epochs=100000", "--set", "patience=0"))
    try:
        wait_for(lambda: history_rows(out / "trials" / "seqbench" / "toymusic-tiny" / "gru")
                 >= 2 or process.poll() is not None, 120, "a trial two epochs in")
    finally:
        process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (130, -signal.SIGINT), err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted: ") and str(out / "sweeps.journal") in line, err
    assert "run the same command again" in line and "Traceback" not in err


def test_every_sampling_seed_is_bounded_like_the_command_lines():
    """`--set seed=` skips `--seed`'s bounds; past 2**32 - 1 torch's manual_seed overflowed."""
    seeds = {name: param for name, entry in registry.plugins("task").items() if entry.plugin
             for param in entry.plugin.generate_params if param.name == "seed"}
    assert {"music", "lm"} <= set(seeds)
    assert {name: (p.low, p.high) for name, p in seeds.items()} == {
        name: (0, MAX_SEED) for name in seeds}


# ---- a run folder is data, never code (issue 38) ----


class _Payload:
    """Unpickling this calls `open(marker, "w")`: a payload that leaves a file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def payload_checkpoint(marker: Path) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "pytorch-lightning_version": "2.6.0", "loops": {},
                "optimizer_states": [], "callbacks": _Payload(marker)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("command", ["resume", "generate", "load"])
def test_a_crafted_checkpoint_never_runs_and_is_one_line_naming_it(command, world, untouched,
                                                                   tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = payload_checkpoint(marker)
    if command == "resume":
        run_dir = broken_run(world, tmp_path, stopped_with(payload))
        argv, named = ["run", "--quiet", "--resume", run_dir], run_dir / "resume.ckpt"
    else:
        run_dir = broken_run(world, tmp_path, lambda r: write(r / "best.ckpt", payload))
        argv, named = ["generate", run_dir, "--output", tmp_path / "g"], run_dir / "best.ckpt"
    if command == "load":
        import seqbench

        with pytest.raises(seqbench.SeqbenchError) as error:
            seqbench.load(run_dir).model  # noqa: B018 - loading is the test
        lines = [f"error: {error.value}"]
    else:
        assert main([str(a) for a in argv]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
    assert not marker.exists(), "the checkpoint's payload ran"
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(named) in lines[0], lines
    assert "could run code" in lines[0], lines


# ---- one process per run folder (issue 38) ----


def test_a_run_folder_is_written_by_one_process_at_a_time(world, tmp_path, capsys):
    """A resume while the original still trains, and a second resume beside a first, are
    refused in one line naming the process that holds the folder."""
    out = tmp_path / "runs"
    original = start([*LONG_RUN, "--output-dir", out])
    try:
        wait_for(lambda: history_rows(out) >= 2, 120, "two epochs")
        (run_dir,) = out.iterdir()
        assert main(["run", "--quiet", "--resume", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {original.pid} on " in err and \
            f"seqbench run --resume {run_dir}" in err and len(err.strip().splitlines()) == 1, err
        wait_for(lambda: (run_dir / "resume.ckpt").is_file(), 120, "a resume point")
    finally:
        original.send_signal(signal.SIGINT)
    assert original.wait(timeout=120) == 130

    first = start(["run", "--quiet", "--resume", run_dir])
    try:
        wait_for(lambda: f"process {first.pid} " in (run_dir / ".seqbench-lock").read_text()
                 or first.poll() is not None, 120, "the first resume to take the folder")
        assert main(["run", "--quiet", "--resume", str(run_dir)]) == 2
        assert f"is in use by process {first.pid} on " in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130, first.communicate()
