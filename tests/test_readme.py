"""The README's quick start is what CI runs, so a missing install step fails CI, not a user."""

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
