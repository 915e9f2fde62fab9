"""The repository stands on its own: no path in the package, the tests, the benchmarks, the launchers, the docs or the CI script
leaves it (a folder beside the checkout, a parent of the repository root, an absolute path of one machine), and the
data the tests and benchmarks read by default is committed. Raw results under ``benchmarks/results/`` are records
of past runs (they name the paths those runs used) and are not checked."""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from conftest import GLUE_FIXTURES, GLUE_FOLDERS

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("syne_prune", "tests", "benchmarks", "launchers", "docs")
FILES = ("README.md", "BENCHMARKS.md", "setup.py", "ruff.toml", ".ci/run")
RECORDS = ("benchmarks/results",)  # raw outputs of past runs, kept as they were written
TEXT = {".py", ".md", ".sh", ".toml", ".cfg", ".txt", ".json", ".yaml", ".yml", ".ini"}

# Each pattern is written so that it does not match its own source line.
OUTSIDE = [
    (re.compile(r"(?<![\w.])\.\./+shared\b"), "a folder beside the checkout"),
    (re.compile(r"\bshare[d]/+(?:data|anchors)\b"), "the data folder beside the checkout"),
    (re.compile(r"(?<![\w.~-])/wor[k]/"), "an absolute path of one machine"),
    (re.compile(r"(?<![\w.])\.\./"), "a relative path above the repository root (commands run from the root)"),
]
# Path(__file__)[.resolve()].parents[K][.parent...] and Path(__file__)[.resolve()].parent.parent...
PARENTS = re.compile(r"__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]((?:\.parent\b)*)")
PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent\b)+)")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _files() -> list[Path]:
    found = [ROOT / name for name in FILES if (ROOT / name).is_file()]
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and path.suffix in TEXT and "__pycache__" not in path.parts \
                    and not any(relative == r or relative.startswith(r + "/") for r in RECORDS):
                found.append(path)
    return found


def _climbs_above_root(relative: PurePosixPath, levels: int) -> bool:
    """Whether going ``levels`` folders up from the file at ``relative`` (its own folder is level 1, so the root is
    level ``len(parts)``) leaves the root."""
    return levels > len(relative.parts)


def _markdown_link_inside(relative: PurePosixPath, target: str) -> bool:
    """A markdown link is relative to its file: inside when it does not climb above the root."""
    depth = len(relative.parts) - 1
    for part in PurePosixPath(target.split("#")[0]).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


def problems(relative: str, text: str) -> list[str]:
    """``file:line: what`` for every path in ``text`` (the file ``relative`` to the root) that leaves the repository."""
    path = PurePosixPath(relative)
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        inside_links = {m.span(1) for m in MARKDOWN_LINK.finditer(line) if path.suffix == ".md" and _markdown_link_inside(path, m.group(1))}
        for pattern, what in OUTSIDE:  # the first that matches names the line
            if any(not any(start <= m.start() < end for start, end in inside_links) for m in pattern.finditer(line)):
                found.append(f"{relative}:{number}: {what}: {line.strip()[:120]}")
                break
        for match in PARENTS.finditer(line):
            if _climbs_above_root(path, int(match.group(1)) + 1 + match.group(2).count(".parent")):
                found.append(f"{relative}:{number}: a parent of the repository root: {match.group(0)}")
        for match in PARENT_CHAIN.finditer(line):
            if _climbs_above_root(path, match.group(1).count(".parent")):
                found.append(f"{relative}:{number}: a parent of the repository root: {match.group(0)}")
    return sorted(set(found))


def test_no_path_leaves_the_repository():
    files = _files()
    assert len(files) > 100 and ROOT / "README.md" in files and ROOT / "tests" / "conftest.py" in files
    found = [p for path in files for p in problems(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8", errors="replace"))]
    assert found == []


def test_the_check_sees_what_it_checks():
    """Known inputs: paths that leave the repository are found, harmless words and paths inside it are not."""
    up, file = "." * 2 + "/", "Path(__file__" + ")"  # written so that this file does not match itself
    beside, data = up + "shared", "share" + "d/data"
    outside = {  # file: (line, what the check names)
        "tests/conftest.py": (f'GLUE = {file}.resolve().parents[1].parent / "glue"', "a parent of the repository root"),
        "benchmarks/x.py": (f'ANCHORS = {file}.parents[1].parent.parent / "anchors"', "a parent of the repository root"),
        "syne_prune/x.py": (f"ROOT = {file}.parent.parent.parent", "a parent of the repository root"),
        "README.md": (f"syne-prune train-supernet --data-dir {beside}/data/glue", "a folder beside the checkout"),
        "BENCHMARKS.md": (f"python benchmarks/quality.py --data-dir {data}/glue", "the data folder beside the checkout"),
        "docs/x.md": ("--workdir " + "/wo" + "rk/runs/quality", "an absolute path of one machine"),
        "launchers/x.py": (f'DATA = "{up}glue"', "a relative path above the repository root"),
        "tests/fixtures/glue/README.md": (f"see [the README]({up * 4}README.md)", "a relative path above the repository root"),
    }
    for relative, (line, what) in outside.items():
        found = problems(relative, line)
        assert len(found) == 1 and f"{relative}:1: {what}" in found[0], (relative, found)
    inside = {
        "syne_prune/search/backends/pool/workers.py": "moves its tensors to shared memory; shared_weights, /dev/shm, not_shared_reason",
        "tests/conftest.py": f'GLUE = {file}.resolve().parent / "fixtures" / "glue"',
        "tests/project/test_lint.py": f"ROOT = {file}.resolve().parents[1]",
        "syne_prune/aws/uploads.py": f"package = {file}.resolve().parents[1]",
        "benchmarks/x.py": f"README = {file}.resolve().parent.parent / 'README.md'",
        "README.md": "the Pareto table (`.../search/pareto.csv`), a framework" + "/wo" + "rk/ folder, --data-dir $GLUE_DIR",
        "tests/fixtures/glue/README.md": f"see [the README]({up * 3}README.md)",
    }
    for relative, line in inside.items():
        assert problems(relative, line) == [], (relative, line)


def test_the_data_read_by_default_is_committed():
    """The tests' GLUE slices and the paper's result tables that the benchmarks read by default."""
    assert GLUE_FIXTURES.is_relative_to(ROOT) and (GLUE_FIXTURES / "README.md").is_file()
    assert all((GLUE_FIXTURES / folder / name).is_file() for folder in GLUE_FOLDERS for name in ("train.tsv", "dev.tsv"))
    import paper_anchors as anchors  # benchmarks/ is on sys.path (pytest.ini)
    assert anchors.ANCHORS.is_relative_to(ROOT) and (anchors.ANCHORS / "README.md").is_file()
    for table in (anchors.SIZES_TABLE, anchors.SCHEDULERS_TABLE, "data_unpruned_model.csv"):
        assert (anchors.ANCHORS / table).is_file(), table
