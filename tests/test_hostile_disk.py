"""Full disks, read-only mounts and closed outputs (issue 38).

Each must end in one `error:` line naming the path and the cause, leave every file written
before intact (no `.partial-` file behind), and a later run on a disk with space must
finish what was started. The disks are real: a small tmpfs mounted for the test (which
needs root and the permission to mount; elsewhere these tests skip and say so).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from test_hostile import RUN, SWEEP, world  # noqa: F401 (a fixture)

import seqbench.resume
from seqbench.cli import main
from seqbench.sweeps.storage import open_storage

FULL = "no space left on the device"


def mount(*options: str, target: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *options, str(target)], capture_output=True, text=True)


@pytest.fixture
def disk(tmp_path):
    """A tmpfs of a given size (in bytes) at a fresh folder; unmounted after the test."""
    mounted: list[Path] = []

    def make(size: int) -> Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a full or read-only disk needs root to mount a tmpfs")
        done = mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", target=target)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def fill(folder: Path) -> Path:
    """Write a file into `folder` until its disk is full; return the file."""
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(bytes(1 << 16))
                handle.flush()
        except OSError:
            pass
    return filler


def one_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, out, err)
    assert "Traceback" not in out + err
    return lines[0]


def no_partial_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if p.name.startswith(".partial-")
                or p.suffix == ".partial"]


def test_a_run_that_fills_its_disk_is_one_line_and_resumes_on_a_disk_with_space(
        world, disk, tmp_path, capsys, monkeypatch):
    """The disk holds one resume point but not a second (written before the first is
    replaced): the run stops there with one line, keeps the first, and the copy moved to a
    disk with space resumes from it and finishes."""
    import torch

    monkeypatch.setattr(seqbench.resume, "ASSUMED_FIRST_COST", 0.0)
    hidden = 256
    parameters = sum(p.numel() for p in (*torch.nn.GRU(88, hidden).parameters(),
                                         *torch.nn.Linear(hidden, 88).parameters()))
    # A resume point holds the weights, Adam's two moments and the best epoch's weights.
    out = disk(int(1.5 * 16 * parameters))
    line = one_error(capsys, [*RUN, "--hidden-size", hidden, "--set", "epochs=60", "--set",
                              "patience=0", "--output-dir", out])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert str(run_dir) in line and FULL in line, line
    no_partial_files(out)
    assert json.loads((run_dir / "config.json").read_text())["spec"]["task"] == "toymusic"
    assert (run_dir / "resume.ckpt").is_file()

    roomy = tmp_path / "roomy"
    shutil.copytree(run_dir, roomy)
    assert main(["run", "--quiet", "--resume", str(roomy)]) == 0, capsys.readouterr().err
    assert json.loads((roomy / "metrics.json").read_text())["epochs"] == 60


def test_a_sweep_on_a_full_disk_keeps_its_journal_and_finishes_once_there_is_space(
        world, disk, capsys):
    out = disk(8 << 20)
    argv = [*SWEEP[:5], "--seeds", "1", "--epochs", "2", "--pruner", "none",
            "--output-dir", out]
    assert main([*argv, "--trials", "1"]) == 0, capsys.readouterr().err
    journal = out / "sweeps.journal"
    before = journal.read_bytes()
    filler = fill(out)
    assert main([str(a) for a in [*argv, "--trials", "2"]]) == 2
    err = capsys.readouterr().err  # the sweep's progress, then the one error line
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == [err.strip().splitlines()[-1]] and "Traceback" not in err, err
    assert FULL in errors[0] and str(out) in errors[0], errors
    assert journal.read_bytes().startswith(before)
    no_partial_files(out)

    filler.unlink()
    assert main([*argv, "--trials", "2"]) == 0, capsys.readouterr().err
    study = optuna.load_study(study_name="seqbench/toymusic/tiny/gru",
                              storage=open_storage(str(journal)))
    assert [t.state.name for t in study.trials].count("COMPLETE") == 2


@pytest.mark.parametrize("command", ["report", "generate"])
def test_a_report_or_generate_into_a_full_disk_is_one_line(command, world, disk, capsys):
    out = disk(1 << 20)
    fill(out)
    argv = {"report": ["report", "--storage", world["journal"], "--output-dir", out / "r"],
            "generate": ["generate", world["run"], "--output", out / "g"]}[command]
    line = one_error(capsys, argv)
    assert FULL in line and str(out) in line, line
    no_partial_files(out)


def test_resume_on_a_read_only_mount_is_one_line(world, disk, tmp_path, capsys):
    out = disk(4 << 20)
    run_dir = out / "run"
    shutil.copytree(world["run"], run_dir)
    (run_dir / "metrics.json").unlink()  # it looks stopped
    assert mount("-o", "remount,ro", target=out).returncode == 0
    try:
        line = one_error(capsys, ["run", "--quiet", "--resume", run_dir])
    finally:
        mount("-o", "remount,rw", target=out)
    assert str(run_dir) in line and "the file system is read-only" in line, line


def test_output_to_a_full_device_is_one_line():
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "seqbench", "list"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == f"error: cannot write to standard output: {FULL}."


def test_a_full_cache_folder_is_a_note_and_leaves_no_partial_file(disk, capsys):
    from seqbench.datafiles import cached

    cache = disk(1 << 20)
    fill(cache)
    value = {"ids": bytes(1 << 20)}
    assert cached(cache / "x.pkl", lambda: value) is value
    assert f"could not write the cache '{cache / 'x.pkl'}'" in capsys.readouterr().err
    no_partial_files(cache)


def test_a_move_into_a_full_disk_names_the_destination():
    """Lightning saves a checkpoint to a temporary file and moves it into the run folder; the
    OSError names the temporary file first, but it is the run folder that is full."""
    import errno

    from seqbench.errors import from_os_error

    moved = OSError(errno.ENOSPC, "No space left on device", "/tmp/tmpx", None, "/runs/r/x.ckpt")
    assert str(from_os_error(moved)) == ("cannot use '/runs/r/x.ckpt': no space left on the "
                                         "device.")
    missing = OSError(errno.EACCES, "Permission denied", "/data/a.csv", None, "/runs/a.csv")
    assert "'/data/a.csv'" in str(from_os_error(missing))
