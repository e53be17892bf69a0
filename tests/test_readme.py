"""The README's quick start is what CI runs, so a missing install step fails CI, not a user;
and its examples run in order in one folder, so one cannot break another."""

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fenced_commands(text: str) -> list[str]:
    blocks = text.split("```bash\n")[1:]
    return [block.split("```")[0].strip() for block in blocks]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = fenced_commands((ROOT / "README.md").read_text())
    ci_lines = [line for line in (ROOT / ".ci/run").read_text().splitlines()
                if line and not line.startswith(("#", " ")) and "pytest" in line]
    assert ci_lines, ".ci/run has no test command"
    assert ci_lines[-1] in readme


def test_quick_start_sets_up_and_runs_the_main_job_in_one_command():
    readme = fenced_commands((ROOT / "README.md").read_text())
    assert any(
        "pip install" in cmd and cmd.endswith("seqbench run --cell lstm --task music")
        for cmd in readme
    )


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def shrunk(text: str, budgets: list[tuple[str, str]]) -> str:
    """The example with smaller budgets; each replaced text must be there, so an edit of the
    README that this test no longer understands fails it instead of running the full budget."""
    for old, new in budgets:
        assert old in text, f"the README example no longer has {old!r}"
        text = text.replace(old, new)
    return text


def test_the_quick_start_then_the_python_snippet_run_in_order_in_one_fresh_folder(
        tmp_path, monkeypatch, capsys):
    """The issue's newcomer: the quick start's run and generate, a command-line sweep of the
    snippet's task with the default study (seeds=2) and the README's `seqbench report` after
    it, then the "From Python" snippet (seeds=3) in the same folder. Budgets are one epoch of a small model; Bach is three chorales."""
    from seqbench.cli import main
    from seqbench_tasks.music import bach

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    every = bach.chorale_paths()
    chosen = [next(p for p in every if bach.split_of(p) == s) for s in ("train", "valid", "test")]
    monkeypatch.setattr(bach, "chorale_paths", lambda: chosen)
    readme = (ROOT / "README.md").read_text()
    commands = fenced_commands(readme)

    setup = next(cmd for cmd in commands if cmd.endswith("seqbench run --cell lstm --task music"))
    run = setup.rpartition(".venv/bin/seqbench ")[2]
    assert main([*shlex.split(run), "--epochs", "1", "--hidden-size", "8"]) == 0
    (run_dir,) = (tmp_path / "runs").glob("music-bach-lstm-seed0-*")
    generate = next(cmd for cmd in commands if cmd.startswith("seqbench generate "))
    placeholder = "runs/music-bach-lstm-seed0-<timestamp>"
    assert main(shlex.split(shrunk(generate, [(placeholder, str(run_dir))]))[1:]) == 0
    assert sorted(p.name for p in (run_dir / "generated").glob("*.mid")) == [
        "sample-1.mid", "sample-2.mid", "sample-3.mid"]

    assert main(["sweep", "--task", "speech", "--cells", "gru,lstm", "--trials", "1", "--seeds",
                 "2", "--rerun-seeds", "0", "--folds", "1", "--epochs", "1"]) == 0
    block = next(cmd for cmd in commands if cmd.startswith("seqbench sweep ")).splitlines()
    status, report = (next(line for line in block if line.startswith(f"seqbench {word} "))
                      for word in ("status", "report"))
    assert main(shlex.split(status, comments=True)[1:]) == 0  # the default storage
    assert main(shlex.split(report, comments=True)[1:]) == 0  # its default folder, reports/
    assert (tmp_path / "reports" / "speech-japanese-vowels" / "index.html").is_file()
    (snippet,) = [block for block in python_blocks(readme) if "sb.sweep(" in block]
    code = shrunk(snippet, [
        ("epochs=20)", "epochs=1, hidden_size=8, progress=False)"),
        ("trials=10, seeds=3,", "trials=1, seeds=3, rerun_seeds=0, folds=1, epochs=1,"),
    ])
    namespace: dict = {}
    exec(compile(code, "README.md (From Python)", "exec"), namespace)
    assert set(namespace["comparison"].table().index) == {"gru", "lstm"}
    assert (namespace["run"].dir / "model.pt").is_file()
    capsys.readouterr()
