"""The product's text speaks of the product as it is: README.md, BENCHMARKS.md, mkdocs.yml, docs/, and the prose of
syne_prune/, tests/, benchmarks/ and launchers/ (comments, docstrings, test names) name no development history — no
tracker items (``issue 14``, ``#14``, ``(issue: search)``), no numbered past faults or fixes, no work sessions or
earlier runs, no commits, no dates or clock times that date a measurement. The history is in git and CHANGELOG.md.

Raw results under benchmarks/results/ are records of runs and third-party tables under benchmarks/anchors/ are not
ours: neither is scanned. Code (names, strings that are not docstrings) is not scanned either, so an API's own words
(``boto3.session.Session``, ``scope="session"``) pass."""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKDOWN = ("README.md", "BENCHMARKS.md", "mkdocs.yml")
PROSE_FOLDERS = ("docs", "syne_prune", "tests", "benchmarks", "launchers")
NOT_SCANNED = ("benchmarks/results", "benchmarks/anchors")

_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
PATTERNS = [
    (re.compile(r"\bissues?\s*(?:#\s*)?\d+", re.I), "a tracker item"),
    (re.compile(r"\(issues?:|\bissues?:\s", re.I), "a tracker item"),
    (re.compile(r"\b(?:the|this|that|an earlier|the same) issue(?:'s)?\b", re.I), "a tracker item"),
    (re.compile(r"(?<![\w'\"&#/.])#\d{1,4}\b"), "a tracker reference"),
    (re.compile(r"\bfaults?\s+\d+", re.I), "a numbered past fault"),
    (re.compile(r"\bfix(?:es)?\s+\d+\b", re.I), "a numbered past fix"),
    (re.compile(r"\bsessions?\b(?!-scoped)", re.I), "a work session"),
    (re.compile(r"\b(?:earlier|previous|later) (?:runs?|sessions?|rounds?|attempts?)\b", re.I), "an earlier run"),
    (re.compile(r"\bthis round\b|\bre-?measured later\b", re.I), "an earlier run"),
    (re.compile(r"\bcommit [0-9a-f]{7,40}\b", re.I), "a commit"),
    (re.compile(r"\b20\d\d-[01]\d(?:-[0-3]\d)?\b"), "a date"),
    (re.compile(rf"\b{_MONTH}\.?\s+(?:\d{{1,2}}(?:st|nd|rd|th)?,?\s+)?20\d\d\b", re.I), "a date"),
    (re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\.?\s+20\d\d\b", re.I), "a date"),
    (re.compile(r"\b\d{1,2}:\d\d\s*[–-]\s*\d{1,2}:\d\d\b"), "a clock time"),
]
# (file, text on the line) where a pattern's words mean something else; keep this list short and specific.
ALLOWED = [
    ("tests/project/test_no_history.py", ""),  # the patterns and their examples
]


def _prose_of_python(text: str) -> list[tuple[int, str]]:
    """(line, text) of every comment, docstring and test function or class name of a Python source."""
    found = [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(text).readline) if tok.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0].lineno
                found += [(first + i, line) for i, line in enumerate(doc.splitlines())]
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.lower().startswith("test"):
            found.append((node.lineno, node.name.replace("_", " ")))
    return found


def _texts() -> dict[str, list[tuple[int, str]]]:
    texts = {}
    paths = [ROOT / name for name in MARKDOWN if (ROOT / name).is_file()]
    for folder in PROSE_FOLDERS:
        paths += sorted(p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".sh", ".yml"))
    for path in paths:
        relative = path.relative_to(ROOT).as_posix()
        if any(relative == n or relative.startswith(n + "/") for n in NOT_SCANNED) or "__pycache__" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        texts[relative] = _prose_of_python(text) if path.suffix == ".py" else list(enumerate(text.splitlines(), 1))
    return texts


def history_references(relative: str, lines: list[tuple[int, str]]) -> list[str]:
    """``file:line: what: text`` for every line of ``lines`` that names development history."""
    found = []
    for number, line in lines:
        if any(relative == path and allowed in line for path, allowed in ALLOWED):
            continue
        for pattern, what in PATTERNS:
            if pattern.search(line):
                found.append(f"{relative}:{number}: {what}: {line.strip()[:140]}")
                break
    return found


def test_the_product_text_names_no_development_history():
    texts = _texts()
    assert "README.md" in texts and "BENCHMARKS.md" in texts and "syne_prune/search/run.py" in texts
    found = [problem for relative, lines in texts.items() for problem in history_references(relative, lines)]
    assert not found, "\n".join(found)


def test_the_patterns_catch_history_and_pass_the_product():
    history = ["fixed in issue 14", "see #12", "(issue: quality)", "the issue's definition", "fault 3 of the search",
               "fix 5 in syne_tune_fixes.py", "measured in session 16", "an earlier run gave 4.1x", "a previous session", "commit ca0a746",
               "run on 2026-03-14", "measured in March 2026", "about 1 h 50 min (16:11-18:01)"]
    product = ["the '#1 String' column of MRPC", "a session-scoped fixture", "markdown ## headings", "fix the file",
               "the GLUE dev split", "3 epochs, 2 workers", "a fault of the data file", "May be interrupted", "while the first runs", "the keep-last run"]
    assert all(history_references("x.md", [(1, line)]) for line in history), history
    assert not [line for line in product if history_references("x.md", [(1, line)])]
