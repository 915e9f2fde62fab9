"""Every `syne-prune` command written in the README and the docs parses with the command line it documents: known
commands, known options, valid choices, and a budget for every search. Nothing runs."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from syne_prune.cli import build_parser
from syne_prune.errors import SynePruneError

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
SHELL = ("bash", "sh", "console", "")
SYNOPSIS = re.compile(r"\[-|\{\w+,")  # a usage line: [--option X], {a,b}


def documented_commands(text: str) -> list[str]:
    """The ``syne-prune ...`` command lines in ``text``'s code blocks: continuation lines joined, comments and shell
    glue (``&&``, ``|``, ``;``) split off."""
    commands = []
    for language, block in FENCE.findall(text):
        if language not in SHELL:
            continue
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"&&|\|\||;|\|", line):
                part = part.split(" #")[0].strip()
                if part.startswith("syne-prune ") and not SYNOPSIS.search(part):
                    commands.append(part)
    return commands


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


CASES = [(page.relative_to(ROOT).as_posix(), command) for page in _pages() for command in documented_commands(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page, command", CASES, ids=[f"{page}:{i}" for i, (page, _) in enumerate(CASES)])
def test_the_documented_command_parses(page, command, capsys):
    argv = shlex.split(command)[1:]
    if "--help" in argv or "-h" in argv or argv in ([], ["--version"]):
        return
    try:
        args = build_parser().parse_args(argv)
    except (SystemExit, SynePruneError) as error:
        pytest.fail(f"{page}: `{command}` does not parse: {error if isinstance(error, SynePruneError) else capsys.readouterr().err}")
    if argv[0] == "search" and not getattr(args, "resume", False):
        assert {"--max-trials", "--max-wallclock"} & set(argv), f"{page}: `{command}` has no budget (--max-trials or --max-wallclock)"


def test_the_reader_finds_commands_and_leaves_out_the_rest():
    text = ("```bash\n# a comment\nsyne-prune search --supernet s \\\n    --max-trials 5 --output o   # budget\n"
            "pip install x && syne-prune export --model m --output e\nsyne-prune recover --model M [--keep best]\n```\n"
            "syne-prune outside a block\n")
    assert documented_commands(text) == ["syne-prune search --supernet s      --max-trials 5 --output o",
                                         "syne-prune export --model m --output e"]
    assert len(CASES) > 20  # the README's and the command pages' examples are read
