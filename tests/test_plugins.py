"""Plugin discovery controls: `seqbench list`, disabling plugins, autoload off."""

from __future__ import annotations

import pytest

from seqbench import registry
from seqbench.cli import main

CELL = """
    from seqbench import Cell
    from seqbench_cells.gru import build

    cell = Cell("extra", "a third-party GRU", build)
"""
EXPLODES = {"explodes.py": "def helper():\n    raise ImportError('needs libfoo')\n\nhelper()\n"}


@pytest.fixture
def third_party(install_plugins, monkeypatch):
    """A working and a broken third-party cell; no disabling from the environment."""
    for name in (registry.DISABLE_ENV, registry.NO_AUTOLOAD_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # one table row per line, nothing wrapped
    install_plugins("extra-cells", {"seqbench.cells": {"extra": "extra_cell:cell"}},
                    {"extra_cell.py": CELL})
    install_plugins("broken-cells", {"seqbench.cells": {"explodes": "explodes:cell"}}, EXPLODES)


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, " ".join(out.out.split()), out.err


def test_list_shows_kind_name_summary_distribution_and_the_full_load_error(third_party, capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "cell │ extra │ recurrent │ a third-party GRU │ extra-cells 1.0" in out
    assert "failed: cell plugin 'explodes' (explodes:cell) from broken-cells 1.0: " \
           "ImportError: needs libfoo" in out
    # The traceback, down to the line of the plugin that raised.
    assert "Traceback" in out and "in helper raise ImportError('needs libfoo')" in out


@pytest.mark.parametrize("name", ["explodes", "broken-cells"])
def test_a_disabled_plugin_is_never_imported_and_says_why(third_party, monkeypatch, capsys, name):
    monkeypatch.setenv(registry.DISABLE_ENV, f"lstm, {name}")
    entry = registry.discover("cell")["explodes"]
    assert entry.disabled and entry.error is None
    assert registry.discover("cell")["lstm"].disabled
    assert registry.discover("cell")["extra"].plugin is not None
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "failed" not in out
    assert "explodes │ │ disabled by SEQBENCH_DISABLE_PLUGINS" in out
    code, _, err = run_cli(capsys, "run", "--task", "music", "--cell", "lstm")
    assert code == 2
    assert err.strip() == ("error: cell plugin 'lstm' from seqbench 0.1.0 is disabled by "
                           "SEQBENCH_DISABLE_PLUGINS / --disable-plugin.")


def test_autoload_off_loads_only_seqbench_s_own_plugins(third_party, monkeypatch):
    monkeypatch.setenv(registry.NO_AUTOLOAD_ENV, "1")
    cells = registry.discover("cell")
    loaded = {n: e for n, e in cells.items() if e.plugin is not None}
    assert {"lstm", "gru", "rnn", "mingru"} <= set(loaded)
    assert {e.distribution for e in loaded.values()} == {"seqbench"}
    assert cells["extra"].disabled == "not autoloaded: SEQBENCH_DISABLE_PLUGIN_AUTOLOAD is set"


def test_the_disable_plugin_option_reaches_every_command_and_child_processes(
        third_party, monkeypatch, capsys):
    code, out, _ = run_cli(capsys, "--disable-plugin", "explodes", "--disable-plugin", "extra",
                           "list")
    assert code == 0 and "failed" not in out
    assert "extra │ │ disabled" in out
    # Sweep workers are separate processes: they read the same environment variable.
    import os

    assert os.environ[registry.DISABLE_ENV].split(",") == ["explodes", "extra"]
    # A mistyped name would leave the plugin meant to be off running: one line, exit 2.
    code, _, err = run_cli(capsys, "--disable-plugin", "extr", "list")
    assert code == 2 and "unknown plugin or distribution 'extr'. Did you mean 'extra'?" in err


def test_disabling_one_side_of_a_name_clash_resolves_it(install_plugins, monkeypatch):
    monkeypatch.delenv(registry.NO_AUTOLOAD_ENV, raising=False)
    install_plugins("rival-cells", {"seqbench.cells": {"gru": "rival:cell"}},
                    {"rival.py": "from seqbench_cells.gru import cell\n"})
    monkeypatch.setenv(registry.DISABLE_ENV, "")
    assert "name clash" in (registry.discover("cell")["gru"].error or "")
    monkeypatch.setenv(registry.DISABLE_ENV, "rival-cells")
    registry.discover.cache_clear()
    entry = registry.discover("cell")["gru"]
    assert entry.plugin is not None and entry.distribution == "seqbench"
