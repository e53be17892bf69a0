"""Run records say which machine they ran on, and a re-run says in one line where it differs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import seqbench as sb
from seqbench import machine, registry, runs
from seqbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
#: A published final: recorded before the machine fields existed (threads only: two).
OLD_RECORD = ROOT / "results" / "finals" / "jv" / "speech-japanese-vowels" / "lstm" / "seed1000"


def test_cpu_model_and_vector_flags_come_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\n"
                       "flags\t\t: fpu sse2 sse4_2 avx avx2 fma avx512f avx512_bf16 ht\n\n"
                       "processor\t: 1\nmodel name\t: Example CPU 9000\nflags\t\t: fpu\n")
    assert machine.cpu(cpuinfo) == ("Example CPU 9000",
                                    "avx avx2 avx512_bf16 avx512f fma sse4_2")
    assert machine.cpu(tmp_path / "missing")[1] == ""


def test_library_versions_are_read_from_torchs_build_configuration():
    config = ("  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605\n"
              "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n")
    assert machine.library_versions(config) == {"mkl": "2024.2", "onednn": "3.12.0"}
    assert machine.library_versions("  - OpenMP 201511\n") == {"mkl": "none", "onednn": "none"}


def test_a_record_names_the_machine():
    recorded = runs.environment()
    assert set(machine.COMPARED) <= set(recorded)
    assert recorded["cpu_threads"] >= 1 and recorded["torch"].startswith("2.")


def test_one_line_names_what_differs_and_an_older_record_is_compared_on_what_it_has():
    now = {"cpu": "B", "cpu_flags": "avx2", "cpu_capability": "AVX2", "torch": "2.13.0",
           "mkl": "2024.2", "onednn": "3.12.0", "cpu_threads": 1}
    line = machine.difference({**now, "cpu": "A", "cpu_threads": 2}, now)
    assert line.count("\n") == 0
    assert "cpu A -> B; cpu_threads 2 -> 1" in line and "other metrics" in line
    assert machine.difference(now, now) == ""
    older = {"torch": "2.13.0", "python": "3.11.7", "cpu_threads": 1}  # no CPU fields
    assert machine.difference(older, now) == ""
    assert "cpu_threads 2 -> 1" in machine.difference({**older, "cpu_threads": 2}, now)


@pytest.fixture
def one_thread(monkeypatch):
    """Runs in this test use one thread; the process's thread settings are restored after."""
    import torch

    before = torch.get_num_threads()
    for name in ("SEQBENCH_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    yield
    torch.set_num_threads(before)


def test_rerunning_a_spec_or_resuming_prints_the_difference_once(tmp_path, capsys,
                                                                   one_thread):
    """`seqbench run --spec` (and `sb.run(spec=...)`, `resume=`) of a record made on another
    machine says so in one line; the published record predates the CPU fields and ran on
    two threads, so on one thread only the thread count differs."""
    record = tmp_path / "record"
    shutil.copytree(OLD_RECORD, record)
    config = json.loads((record / "config.json").read_text())
    assert "cpu" not in config["environment"] and config["environment"]["cpu_threads"] == 2
    assert main(["run", "--spec", str(record / "config.json"), "--set", "epochs=1",
                 "--quiet", "--output-dir", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "differs" in line]
    assert lines == ["note: this machine differs from the run record's (cpu_threads 2 -> 1), "
                     "so the same spec and seed may give other metrics."]
    (rerun,) = (tmp_path / "out").iterdir()
    assert set(machine.COMPARED) <= set(json.loads((rerun / "config.json").read_text())[
        "environment"])
    sb.run(spec=rerun, epochs=1, output_dir=tmp_path / "again", progress=False)
    assert "differs" not in capsys.readouterr().err  # the same machine now


@pytest.mark.parametrize("dataset, params, span", [
    ("etth1", {"lookback": 0, "horizon": 0}, 96 + 24),  # the published records' defaults
    ("etth1", {"lookback": 336, "horizon": 96}, 336 + 96),
    ("m1-yearly", {}, 1),                               # one test window per series
    ("csv", {"id": "series"}, 1),
])
def test_forecasting_says_how_far_its_test_windows_share_data(dataset, params, span):
    assert registry.get_task("forecasting").test_item_span(dataset, params) == span
    assert registry.get_task("speech").test_item_span("japanese-vowels", {}) == 1
