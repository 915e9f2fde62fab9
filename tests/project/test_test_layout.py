"""The tests' own layout: pytest imports every test file by its base name (the folders are not packages), so two
test files of one name in different folders stop the whole suite at collection; and no test file imports another
(what several share lives in ``tests/helpers.py`` or a fixtures module)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_name_is_unique():
    folders = defaultdict(list)
    for path in TESTS.rglob("test_*.py"):
        folders[path.name].append(path.parent.relative_to(TESTS).as_posix() or ".")
    assert {name: where for name, where in folders.items() if len(where) > 1} == {}


def test_no_test_file_imports_another():
    pattern = re.compile(r"^\s*(?:from|import)\s+(test_\w+)", re.M)
    found = {p.relative_to(TESTS).as_posix(): pattern.findall(p.read_text(encoding="utf-8")) for p in TESTS.rglob("*.py")}
    assert {path: names for path, names in found.items() if names} == {}
