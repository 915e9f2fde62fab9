"""The README's "Your own data" section comes right after the quickstart and its example runs: the CSV it shows as
tickets/train.csv and tickets/test.csv, its three commands as written but with a tiny model in place of the user's
a search budget of 4 trials (the 100 of the README take minutes on two cores) and --max-params 0.7 (the tiny
model's smallest sub-network keeps 0.61 of its parameters, most of them embeddings)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from syne_prune.cli import main

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    return text[start:text.index("\n## ", start + 1)]


def test_your_own_data_follows_the_quickstart():
    headings = re.findall(r"^## (.+)$", README.read_text(), flags=re.MULTILINE)
    assert headings[headings.index("The two commands") + 1] == "Your own data"


@pytest.mark.slow
def test_the_readme_own_data_example_runs(bert_dir, tmp_path, monkeypatch):
    section = _section("Your own data")
    csv = re.search(r"```text\n(.*?)```", section, flags=re.DOTALL).group(1)
    commands = re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)
    (tmp_path / "tickets").mkdir()
    for name in ("train.csv", "test.csv"):
        (tmp_path / "tickets" / name).write_text(csv)
    monkeypatch.chdir(tmp_path)
    lines = [line.split("#")[0] for line in commands.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]
    assert [shlex.split(line)[:2] for line in lines] == [["syne-prune", "train-supernet"], ["syne-prune", "search"], ["syne-prune", "export"]]
    for line in lines:
        argv = [{"my-finetuned-classifier": str(bert_dir), "100": "4", "0.6": "0.7"}.get(word, word) for word in shlex.split(line)[1:]]
        assert main(argv) == 0, line
    from transformers import pipeline

    import syne_prune  # noqa: F401  # registers the pruned classes with transformers' Auto classes

    answer = pipeline("text-classification", model=str(tmp_path / "tickets-small"))("I was charged twice")
    assert answer[0]["label"] in {"billing", "login", "shipping"}
