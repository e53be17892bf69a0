"""Shared fixtures: isolated caches, fake plugin distributions, the real-data switch."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from seqbench import registry, threads

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


#: What `seqbench.threads.configure` writes into the environment (for its workers), as the
#: session found it.
THREAD_SETTINGS = {name: os.environ.get(name) for name in threads.SETTINGS}
# Every model the tests train is small, and the thread rule gives it one thread; the torch
# work tests do directly (reference computations, export tracing) gets one too. An API call
# restores the pool it found (`threads.scoped`), so without this that work ran on torch's
# default of every core: on two cores, tracing an sLSTM for ONNX took 62 s instead of
# seconds. The tests of the rule itself set the count they check.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own preprocessed-data cache; nothing leaks between tests, the
    thread settings included (restored to the session's, since a module's fixture may have
    run a sweep before its first test): a leaked `--threads 2` made every later in-process
    run of a small model use two threads, five times slower on two cores."""
    monkeypatch.setenv("SEQBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    registry.discover.cache_clear()
    threads.restore(THREAD_SETTINGS)


@pytest.fixture(autouse=True)
def eager_step_loops(request, monkeypatch):
    """Step cells run their time loop eagerly (`SEQBENCH_COMPILE=0`, inherited by the
    workers a test starts) unless the test is marked `compiles`. Compilation is what
    tests/test_step.py tests (compiled and eager loops agree, each signature compiles once,
    a failure falls back, a run records its cost) and CI's step-cell run uses; elsewhere a
    cold compile only cost time: 10-60 s per signature and process from an empty inductor
    cache, about two of CI's twenty minutes (the sLSTM export refusal alone 70 s)."""
    if request.node.get_closest_marker("compiles") is None:
        monkeypatch.setenv("SEQBENCH_COMPILE", "0")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The canonical data folder, or a skip saying why there is none."""
    chosen = os.environ.get("SEQBENCH_DATA_DIR")
    path = Path(chosen) if chosen else SHARED_DATA
    if not path.is_dir():
        pytest.skip(f"real data not available: set SEQBENCH_DATA_DIR (looked in {path})")
    return path


@pytest.fixture
def install_plugins(tmp_path, monkeypatch):
    """Make a fake installed distribution that declares entry points, the way pip would.

    Returns a function `install(dist_name, entry_points, modules)` where `entry_points` maps a
    group to {name: "module:attr"} and `modules` maps module file names to source code. The
    folder goes on sys.path (and PYTHONPATH, for subprocesses) and discovery is reset.
    """
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), *sys.path]))

    def install(dist_name: str, entry_points: dict, modules: dict[str, str] | None = None) -> Path:
        info = root / f"{dist_name.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n"
        )
        lines = []
        for group, items in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{name} = {target}" for name, target in items.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for filename, source in (modules or {}).items():  # "pkg/mod.py" makes the package
            (root / filename).parent.mkdir(parents=True, exist_ok=True)
            (root / filename).write_text(textwrap.dedent(source))
        registry.discover.cache_clear()
        return root

    return install


TOY_TASK = """
    import numpy as np
    from seqbench_tasks.music.task import MusicData, MusicTask

    def _pieces(count, rng):
        pieces = []
        for _ in range(count):
            length = int(rng.integers(6, 14))
            roll = np.zeros((length, 88), dtype=np.uint8)
            for t in range(length):
                roll[t, 39 + (t % 4) * 4] = 1   # a rising arpeggio around middle C
            pieces.append(roll)
        return pieces

    class ToyMusic(MusicTask):
        name = "toymusic"
        summary = "tiny synthetic piano rolls for tests"
        datasets = {"tiny": "24 synthetic arpeggios"}
        default_dataset = "tiny"
        defaults = {"epochs": 2, "hidden_size": 8, "batch_size": 4, "lr": 0.01}

        def prepare(self, dataset, context, params):
            rng = np.random.default_rng(0)
            splits = {"train": _pieces(16, rng), "valid": _pieces(4, rng), "test": _pieces(4, rng)}
            return MusicData(dataset, splits, steps_per_beat=1)

    task = ToyMusic()
"""


@pytest.fixture
def toy_task(install_plugins):
    """A tiny synthetic music task, installed as a third-party plugin would be."""
    install_plugins("toy-music", {"seqbench.tasks": {"toymusic": "toy_music:task"}},
                    {"toy_music.py": TOY_TASK})
    return "toymusic"
