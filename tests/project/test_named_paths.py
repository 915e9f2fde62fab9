"""Every file of the repository that the product's text names exists: README, BENCHMARKS.md, setup.py, mkdocs.yml,
the docs, and the comments and docstrings of the package, benchmarks, launchers and tests. A file that moves
takes its mentions with it."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = ("tests", "benchmarks", "syne_prune", "docs", "launchers")
# a path inside one of the top folders, ending in a file suffix; not part of a longer path or a variable
NAMED = re.compile(r"(?<![\w/.$-])((?:" + "|".join(TOP) + r")/[\w./-]*\w\.(?:py|md|json|csv|png|sh|yml|tsv))")
PLACEHOLDERS = {"x", "NAME"}  # stems that stand for any file in examples and in the checks' own known inputs


def named_paths(text: str) -> list[str]:
    """The repository paths ``text`` names (``tests/...py``, ``docs/...md``, ...), placeholders left out."""
    return [p for p in NAMED.findall(text) if Path(p).stem not in PLACEHOLDERS]


def _texts():
    for name in ("README.md", "BENCHMARKS.md", "setup.py", "mkdocs.yml"):
        yield ROOT / name
    yield from sorted((ROOT / "docs").rglob("*.md"))
    for top in ("syne_prune", "benchmarks", "launchers", "tests"):  # docs/examples/ name the files a user would add
        yield from sorted((ROOT / top).rglob("*.py"))


def test_every_named_repository_file_exists():
    missing = [f"{path.relative_to(ROOT)}:{number}: {named}"
               for path in _texts()
               for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
               for named in named_paths(line) if not (ROOT / named).exists()]
    assert missing == [], "files named but not in the repository (moved or renamed?):\n" + "\n".join(missing)


def test_the_check_finds_paths_and_leaves_out_what_is_not_one():
    assert named_paths("see `tests/project/test_lint.py` and docs/data.md.") == ["tests/project/test_lint.py", "docs/data.md"]
    assert named_paths("python benchmarks/quality.py --out benchmarks/results/x.json") == ["benchmarks/quality.py"]
    assert named_paths("$WORK/tests/a.py, my/docs/b.md, syne_prune/models/NAME.py, benchmarks/x.py") == []
    assert named_paths("tests/fixtures/glue/MRPC/train.tsv") == ["tests/fixtures/glue/MRPC/train.tsv"]
