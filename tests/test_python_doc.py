"""docs/python.md is executed, block by block, in one namespace: the walkthrough cannot drift
from the API it documents. Its runs are a few epochs of Japanese Vowels (offline), so the
whole page takes seconds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from seqbench import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def fresh_registrations(monkeypatch):
    """Cells the walkthrough registers stay inside this test."""
    monkeypatch.setattr(registry, "_REGISTERED", {"cell": {}, "task": {}})


def test_every_python_block_of_the_walkthrough_runs(tmp_path, monkeypatch, capsys,
                                                    fresh_registrations):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 10
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"docs/python.md block {number}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the block that broke
            pytest.fail(f"docs/python.md block {number} failed: {type(exc).__name__}: {exc}\n"
                        f"{block}")
    out = capsys.readouterr().out
    # the printed errors are the ones the prose promises
    assert "Did you mean 'hidden_size'?" in out
    assert "cell 'leaky' was registered in this process, and jobs=2" in out
    assert len(namespace["history"]) == 3
    assert namespace["mine"].spec.cell_params == {"leak": 0.7}
    assert set(namespace["duel"].table().index) == {"gru", "leaky"}
    assert (tmp_path / "report" / "speech-japanese-vowels" / "table.md").is_file()
