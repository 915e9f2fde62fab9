"""The built-in tasks' files: the GLUE distribution's TSV layout (``RTE/train.tsv``, ``RTE/dev.tsv``, ...; SWAG as in
its repository: ``SWAG/train.csv``, ``SWAG/val.csv``) read as the files are, quirks included, or the same tasks from
the Hugging Face hub."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from syne_prune.errors import SynePruneError

from .splits import Split, require_finite_scores
from .tasks import Task


def read_local(task: Task, data_dir: Path, file_name: str) -> Split:
    if task.folder is None:
        raise SynePruneError(f"task '{task.name}' has no local TSV reader; drop --data-dir to load it from the hub")
    path = data_dir / task.folder / file_name
    if not path.is_file():
        raise SynePruneError(f"{path} not found; --data-dir must hold {task.folder}/{task.train_file} and "
                             f"{task.folder}/{task.dev_file} in {_layout(task)} layout")
    columns, rows = _read_tsv(path, task.header)
    missing = [c for c in task.local_columns if c not in columns]
    if missing:
        raise SynePruneError(f"{path} lacks column(s) {missing}; expected the {_layout(task)} {task.folder} layout")
    *text_columns, label_column = (columns.index(c) for c in task.local_columns)
    texts = [[row[c] for row in rows] for c in text_columns]
    labels = _parse_labels(task, [row[label_column] for row in rows], path, first_line=2 if task.header else 1)
    return Split(texts, labels, task.num_choices)


def _layout(task: Task) -> str:
    return "SWAG repository (CSV)" if task.is_multiple_choice else "GLUE"


def _read_tsv(path: Path, header: bool) -> tuple[list, list[list[str]]]:
    """GLUE TSV rows: quoting off (stray quotes are text), a BOM tolerated, every row as wide as the first.
    A ``.csv`` file (SWAG) is read as standard CSV, quotes included."""
    dialect = {"delimiter": ","} if path.suffix == ".csv" else {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.reader(handle, **dialect))
    except UnicodeDecodeError:
        raise SynePruneError(f"{path} is not UTF-8 text; restore the original GLUE file") from None
    if not rows:
        raise SynePruneError(f"{path} is empty; restore the original GLUE file")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise SynePruneError(f"{path} is malformed: line {number} has {len(row)} fields, expected {width}; restore the original file")
    columns = rows[0] if header else list(range(width))
    return columns, rows[1:] if header else rows


def _parse_labels(task: Task, raw: list[str], path: Path, first_line: int = 2) -> np.ndarray:
    """Label ids (classification) or float32 scores (regression) of the rows; ``first_line``: the file line of ``raw[0]``."""
    if task.is_regression:
        try:
            scores = np.asarray([float(v) for v in raw], dtype=np.float32)
        except ValueError:
            index = next(i for i, v in enumerate(raw) if not _is_float(v))
            raise SynePruneError(f"{path} line {first_line + index} has a non-numeric score {raw[index]!r}; restore the original "
                                 "GLUE file") from None
        require_finite_scores(scores, str(path), first_line)
        return scores
    if task.label_values:
        ids = {value: i for i, value in enumerate(task.label_values)}
    else:
        ids = {str(i): i for i in range(task.num_labels)}
    unknown = sorted({v for v in raw if v not in ids})
    if unknown:
        line = first_line + next(i for i, v in enumerate(raw) if v not in ids)
        raise SynePruneError(f"{path} has unknown label(s) {unknown[:3]} (expected {sorted(ids)}), the first on line {line}; "
                             "restore the original GLUE file")
    return np.asarray([ids[v] for v in raw], dtype=np.int64)


def _is_float(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def read_hub(task: Task) -> tuple[Split, Split]:  # pragma: no cover - needs the network
    import datasets  # slow to import (~1 s) and needed only for data from the hub

    path, name = task.hub
    try:
        dataset = datasets.load_dataset(path, name)
    except Exception as error:  # noqa: BLE001 - offline, unknown dataset, ...
        raise SynePruneError(
            f"cannot load '{task.name}' from the Hugging Face hub ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
            f"pass --data-dir with local GLUE files"
        ) from None

    def split(part) -> Split:
        labels = np.asarray(part["label"], dtype=np.float32 if task.is_regression else np.int64)
        if task.is_regression:
            require_finite_scores(labels, f"hub dataset {path}/{name} (train or {task.hub_test_split})", 0, unit="row")
        return Split([list(part[c]) for c in task.text_columns], labels, task.num_choices)

    return split(dataset["train"]), split(dataset[task.hub_test_split])
