"""The user's own task data: tables in CSV, TSV, JSON, JSON Lines or Parquet (read with pandas) or a saved
``datasets.DatasetDict``, turned into splits. ``resolve`` fills in what a ``TaskSpec`` leaves open (text columns,
task type, metric, class names, the files' sha256) and checks every row; ``read_splits`` reads a resolved
specification's splits, refusing files that changed since it was resolved (``check_unchanged``). Every problem is one
``SynePruneError`` naming the file, the line or record, the column and the fix."""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import pandas as pd

from syne_prune.errors import SynePruneError

from . import label_lists
from .metrics import get_metric
from .splits import Split
from .task_types import default_metrics, file_task_types
from .tasks import TaskSpec

SPLITS = ("train", "validation", "test")
READERS = {  # suffix -> (how to read it, how a row is named in messages, number of the first row)
    ".csv": (lambda p: pd.read_csv(p, dtype=None, keep_default_na=False, na_values=[""]), "line", 2),
    ".tsv": (lambda p: pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""]), "line", 2),  # quoted as pandas writes
    ".jsonl": (lambda p: pd.read_json(p, lines=True, dtype=False), "line", 1),
    ".json": (lambda p: pd.read_json(p, dtype=False), "record", 1),
    ".parquet": (pd.read_parquet, "record", 1),
    ".conll": (label_lists.read_conll, "sentence at line", 1),  # token classification; rows name their first line
}


class Table:
    """One split's rows (``frame``) and where they came from: ``source`` (the file, or ``dataset[split]``),
    ``unit`` ("line" or "record") and ``first`` (the number of the first row), so a message can name a row."""

    def __init__(self, frame: pd.DataFrame, source: str, unit: str = "record", first: int = 1) -> None:
        self.frame, self.source, self.unit, self.first = frame, source, unit, first

    def where(self, row: int) -> str:
        lines = self.frame.attrs.get("lines")  # rows that span several lines (CoNLL sentences): their first line
        return f"{self.source} {self.unit} {lines[row] if lines else self.first + row}"


def read_table(path: str | Path) -> Table:
    """The rows of one data file, read by its suffix (``READERS``). Raises ``SynePruneError`` for a missing
    file, an unknown suffix, text that is not UTF-8, a CSV/TSV row with more fields than the header, and an empty
    file."""
    path = Path(path)
    if path.suffix.lower() not in READERS:
        raise SynePruneError(f"{path}: unknown data file format '{path.suffix}'; use one of {', '.join(READERS)}")
    if not path.is_file():
        raise SynePruneError(f"{path} not found; check the path of the data file")
    read, unit, first = READERS[path.suffix.lower()]
    try:
        frame = read(path)
    except UnicodeDecodeError:
        raise SynePruneError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise SynePruneError(f"{path} is empty; give a file with a header and at least one row") from None
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        detail = f"line {found[2]} has {found[3]} fields, the header {found[1]}" if found else str(error).splitlines()[0]
        raise SynePruneError(f"{path}: {detail}; quote fields that contain the delimiter") from None
    except ValueError as error:  # malformed JSON, or a Parquet file that is not one
        raise SynePruneError(f"{path} cannot be read as {path.suffix[1:]} ({str(error).splitlines()[0]}); check the file") from None
    if not len(frame):
        raise SynePruneError(f"{path} has no rows; give at least one example")
    return Table(frame, str(path), unit, first)


def read_tables(spec: TaskSpec) -> dict[str, Table]:
    """The splits a specification names (``train`` always; ``validation`` and ``test`` when given)."""
    if spec.dataset is not None:
        return _read_dataset(spec.dataset)
    files = {"train": spec.train_file, "validation": spec.validation_file, "test": spec.test_file}
    return {split: read_table(path) for split, path in files.items() if path is not None}


def _read_dataset(name: str) -> dict[str, Table]:  # a saved DatasetDict, or a hub id
    import datasets  # slow to import (~1 s); needed only for --dataset

    try:
        loaded = datasets.load_from_disk(name) if Path(name).is_dir() else datasets.load_dataset(name)
    except Exception as error:  # noqa: BLE001 - not a saved dataset, offline, unknown id, ...
        raise SynePruneError(f"cannot load dataset '{name}' ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                             "give a directory written by DatasetDict.save_to_disk") from None
    if not isinstance(loaded, datasets.DatasetDict) or "train" not in loaded:
        raise SynePruneError(f"dataset '{name}' has no 'train' split; save a DatasetDict with train (and validation, test) splits")
    tables = {split: Table(loaded[split].to_pandas(), f"{name}[{split}]") for split in SPLITS if split in loaded}
    for split, table in tables.items():
        if not len(table.frame):
            raise SynePruneError(f"dataset '{name}' has an empty {split} split; give at least one example")
    return tables


def file_digests(spec: TaskSpec) -> tuple[tuple[str, str], ...]:
    """``((split, sha256), ...)`` of the files a specification reads (a saved dataset: all its files, in order of
    name; a hub id: none)."""
    if spec.dataset is not None:
        root = Path(spec.dataset)
        if not root.is_dir():
            return ()
        digest = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(_sha256(path).encode())
        return (("dataset", digest.hexdigest()),)
    files = {"train": spec.train_file, "validation": spec.validation_file, "test": spec.test_file}
    return tuple((split, _sha256(Path(path))) for split, path in files.items() if path is not None)


def check_unchanged(spec: TaskSpec) -> None:
    """Refuse, in one line, a data file of ``spec`` whose sha256 differs from the one ``resolve`` recorded (naming the
    file and both digests' first 12 hex digits) or that is gone. A specification without recorded digests passes.
    Raises ``SynePruneError``."""
    if not spec.sha256:
        return
    files = {"train": spec.train_file, "validation": spec.validation_file, "test": spec.test_file, "dataset": spec.dataset}
    for split, recorded in spec.sha256:
        path = Path(str(files.get(split)))
        if not path.exists():
            raise SynePruneError(f"data file {path} ({split}) is gone (recorded sha256 {recorded[:12]}); restore it, or start anew "
                                 "on other data (a new --output)")
    for (split, recorded), (_, now) in zip(spec.sha256, file_digests(spec)):
        if recorded != now:
            raise SynePruneError(f"data file {files[split]} ({split}) changed since the task was recorded (sha256 {recorded[:12]} "
                                 f"recorded, {now[:12]} now); restore the file, or start anew on the changed data (a new --output)")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def infer_text_columns(table: Table, label_column: str) -> tuple[str, ...]:
    """The text columns when none are given: ``text``, else ``sentence1,sentence2``, else the one or two string
    columns that are not the label. Raises ``SynePruneError`` listing the columns when none of these fit."""
    columns = list(table.frame.columns)
    if "text" in columns:
        return ("text",)
    if "sentence1" in columns and "sentence2" in columns:
        return ("sentence1", "sentence2")
    strings = tuple(c for c in columns if c != label_column and _value_type(table.frame[c]) == "string")
    if 1 <= len(strings) <= 2:
        return strings
    words = tuple(c for c in columns if c != label_column and table.frame[c].map(label_lists.is_list).all())
    if "tokens" in words or "words" in words or len(words) == 1:  # token classification: the column of word lists
        return ("tokens",) if "tokens" in words else ("words",) if "words" in words else words
    raise SynePruneError(f"{table.source}: cannot tell the text column(s) among {columns}; pass --text-columns A[,B]")


def infer_task_type(values: pd.Series, texts: pd.Series | None = None) -> str:
    """``regression`` for float scores that are not all whole numbers, else ``classification`` (integers or
    strings); labels that are lists: ``token-classification`` when the text (``texts``, the first text column) is
    a list of words too, else ``multi-label``."""
    present = values.dropna()
    if present.map(label_lists.is_list).any():
        words = texts is not None and bool(texts.map(label_lists.is_list).any())
        return "token-classification" if words else "multi-label"
    if pd.api.types.is_float_dtype(present) and not (present == present.round()).all():
        return "regression"
    return "classification"


def _check_columns(table: Table, wanted: tuple[str, ...]) -> None:
    missing = [c for c in wanted if c not in table.frame.columns]
    if missing:
        raise SynePruneError(f"{table.source} has no column {', '.join(map(repr, missing))}; its columns are "
                             f"{', '.join(map(str, table.frame.columns))} (--text-columns, --label-column)")


def _check_cells(table: Table, spec: TaskSpec) -> None:
    """Every text and every label present (not empty, not blank, not NaN)."""
    for column in (*spec.text_columns, spec.label_column):
        values = table.frame[column]
        bad = values.isna()
        if _value_type(values) == "string":
            bad |= values.fillna("x").astype(str).str.strip().eq("")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            what = "label" if column == spec.label_column else "text"
            raise SynePruneError(f"{table.where(row)} has an empty or missing {what} in column '{column}' "
                                 f"({int(bad.sum())} such row(s)); fill or remove those rows")


def _value_type(values: pd.Series) -> str:
    """pandas' inferred type of a column's values, NaN left out: ``string``, ``integer``, ``floating``, ``mixed``, ..."""
    return pd.api.types.infer_dtype(values, skipna=True)


def _label_kind(table: Table, column: str) -> type:
    """``str`` or ``int`` (or ``float`` scores): the one type of a column's labels; mixed types are an error."""
    kind = {"string": str, "integer": int, "floating": float, "mixed-integer-float": float}.get(_value_type(table.frame[column]))
    if kind is not None:
        return kind
    kinds = table.frame[column].map(lambda v: str if isinstance(v, str) else float if isinstance(v, float) else int)
    if kinds.nunique() > 1:
        row = int(np.flatnonzero((kinds != kinds.iloc[0]).to_numpy())[0])
        raise SynePruneError(f"{table.where(row)}: column '{column}' mixes label types ({kinds.iloc[0].__name__} and "
                             f"{kinds.iloc[row].__name__}); use one type for every label")
    return kinds.iloc[0]


def _class_names(tables: dict[str, Table], spec: TaskSpec, model_config: Any) -> tuple[str, ...]:
    """The class names in id order: the model's own (a fine-tuned classifier's ``id2label``), else the labels
    sorted (integers: 0..max, as ids). Raises ``SynePruneError`` for a label the model does not know, a
    negative integer label, or a train split with a single class."""
    kind = _label_kind(tables["train"], spec.label_column)
    own = label_lists.own_label_names(model_config)
    if own:
        names = own
    elif kind is str:
        names = tuple(sorted({v for t in tables.values() for v in t.frame[spec.label_column]}))
    else:
        names = tuple(str(i) for i in range(int(max(t.frame[spec.label_column].max() for t in tables.values())) + 1))
    for table in tables.values():
        _label_ids(table, spec.label_column, names)  # every label known
    if tables["train"].frame[spec.label_column].nunique() < 2:
        raise SynePruneError(f"{tables['train'].source}: the train split has a single class; a classifier needs two or more")
    return names


def _check_all_scores(tables: dict[str, Table], spec: TaskSpec, model_config: Any) -> tuple[str, ...]:
    """Regression: every table's scores checked (``_check_scores``); no class names."""
    for table in tables.values():
        _check_scores(table, spec.label_column)
    return ()


def _check_scores(table: Table, column: str) -> None:
    """Regression scores: numbers, finite."""
    scores = pd.to_numeric(table.frame[column], errors="coerce").astype(float)
    bad = ~np.isfinite(scores.to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SynePruneError(f"{table.where(row)} has the score {table.frame[column].iloc[row]!r} in column '{column}', not a "
                             f"finite number ({int(bad.sum())} such row(s)); fix those rows or use --task-type classification")


def _label_ids(table: Table, column: str, names: tuple[str, ...]) -> np.ndarray:
    """Class ids of a table's labels: strings by name; integers (and whole-number floats) as ids 0 .. len(names) - 1,
    or by name where every name is a number (``label_lists.numbers_are_ids``). Raises ``SynePruneError`` naming the
    first unknown label's row."""
    values = table.frame[column]
    kind = _value_type(values)
    raw = (values.astype(str) if kind == "string" else values.astype("int64").astype(str) if kind == "integer"
           else values.map(lambda v: str(int(v)) if float(v) == int(v) else str(v)))  # whole-number floats: 1.0 -> "1"
    if kind != "string" and label_lists.numbers_are_ids(names):
        ids = {str(i): i for i in range(len(names))}
        known = f"the ids 0..{len(names) - 1} of the classes {list(names)}"
    else:
        ids, known = {name: i for i, name in enumerate(names)}, f"the classes {list(names)}"
    unknown = ~raw.isin(list(ids))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise SynePruneError(f"{table.where(row)} has the label {raw.iloc[row]!r}, which is not one of {known}; "
                             "fix the label or give a model whose id2label has it")
    return raw.map(ids).to_numpy(dtype=np.int64)


class LabelReader(NamedTuple):
    """How one task type reads the label column of the user's files: ``names(tables, spec, model_config)`` checks every
    row and returns the label names in id order; ``labels(table, spec, names)`` a table's labels as the ``Split`` holds
    them; ``texts(table, column)`` a text column's values."""

    names: Callable[[dict[str, Table], TaskSpec, Any], tuple[str, ...]]
    labels: Callable[[Table, TaskSpec, tuple[str, ...]], np.ndarray]
    texts: Callable[[Table, str], list] = lambda table, column: table.frame[column].astype(str).tolist()


LABEL_READERS: dict[str, LabelReader] = {
    "classification": LabelReader(_class_names, lambda table, spec, names: _label_ids(table, spec.label_column, names)),
    "regression": LabelReader(_check_all_scores, lambda table, spec, names: table.frame[spec.label_column].astype(np.float32).to_numpy()),
    "multi-label": LabelReader(label_lists.label_set_names, label_lists.label_sets),
    "token-classification": LabelReader(label_lists.tag_names, label_lists.tag_ids, label_lists.word_lists),
}
"""The label reader of each task type users can give files for (``syne_prune.data.task_types``)."""


def default_name(spec: TaskSpec) -> str:
    """A specification's name when none is given: its dataset folder's or train file's name, or the folder's when
    the file is named after its split (``tickets/train.csv`` -> ``tickets``)."""
    path = Path(spec.dataset or spec.train_file or "task")
    return path.parent.resolve().name if path.stem.lower() in ("train", "training", "data") and path.parent.resolve().name else path.stem


def resolve(spec: TaskSpec, model_config: Any = None) -> TaskSpec:
    """``spec`` with every open field filled in (``TaskSpec.is_resolved``), all rows checked, and the files'
    sha256 recorded. ``model_config``: the model's config, whose task-specific ``id2label`` names the classes.
    Raises ``SynePruneError`` for any problem in the data, naming the file and row."""
    tables = read_tables(spec)
    train = tables["train"]
    if spec.label_column not in train.frame.columns:
        _check_columns(train, (spec.label_column,))
    spec = replace(spec, text_columns=spec.text_columns or infer_text_columns(train, spec.label_column))
    if not 1 <= len(spec.text_columns) <= 2:
        raise SynePruneError(f"--text-columns names {len(spec.text_columns)} columns; give one text column or a pair")
    for table in tables.values():
        _check_columns(table, (*spec.text_columns, spec.label_column))
        _check_cells(table, spec)
    task_type = spec.task_type or infer_task_type(train.frame[spec.label_column], train.frame[spec.text_columns[0]])
    if task_type not in file_task_types() or task_type not in LABEL_READERS:
        raise SynePruneError(f"unknown task type '{task_type}'; choose one of {', '.join(file_task_types())}")
    metric = get_metric(spec.metric or default_metrics()[task_type], task_type).name
    labels = LABEL_READERS[task_type].names(tables, spec, model_config)
    name = spec.name or default_name(spec)
    absolute = {k: str(Path(v).resolve()) for k in ("train_file", "validation_file", "test_file", "dataset")
                if (v := getattr(spec, k)) is not None and Path(v).exists()}  # later stages run from anywhere
    return replace(spec, task_type=task_type, metric=metric, labels=labels, name=name, sha256=file_digests(spec), **absolute)


def read_splits(spec: TaskSpec) -> dict[str, Split]:
    """The splits of a resolved specification (``train``, and ``validation`` / ``test`` where given) as ``Split``s,
    labels as the type's ``LABEL_READERS`` entry reads them: class ids (int64), scores (float32), 0/1 indicators
    (float32 [rows, labels]) or per-word tag ids. Raises ``SynePruneError`` when a file changed since ``resolve``
    recorded its sha256 (a resumed or later stage would otherwise see other data)."""
    check_unchanged(spec)
    splits = {}
    for split, table in read_tables(spec).items():
        _check_columns(table, (*spec.text_columns, spec.label_column))
        if not spec.sha256:  # files with a recorded sha256 are the ones resolve checked row by row
            _check_cells(table, spec)
        reader = LABEL_READERS[spec.task_type]
        splits[split] = Split([reader.texts(table, c) for c in spec.text_columns], reader.labels(table, spec, spec.labels))
    return splits
