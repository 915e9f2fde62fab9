"""The data of an embedding task: plain sentences to distil on (one text column, no labels) and, optionally, scored
sentence pairs to validate on (two text columns and a score, as STS-B), read from CSV, TSV, JSON, JSON Lines,
Parquet or plain text (``.txt``: one sentence per line). ``resolve_embedding_task`` completes a ``TaskSpec`` of
``task_type`` ``embedding`` against its files (columns, metric, sha256) and checks every row; every problem is one
``SynePruneError`` naming the file, row and column, and the fix."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from syne_prune.data import TaskSpec
from syne_prune.errors import SynePruneError

EMBEDDING = "embedding"
"""The ``TaskSpec.task_type`` of an embedding task."""
PAIRS_METRIC = "spearman"  # Spearman correlation of the cosine similarities with the pairs' scores
SENTENCES_METRIC = "cosine"  # mean cosine similarity of the sub-network's and the teacher's embeddings
SCORE_COLUMNS = ("score", "label", "similarity")
_READERS = {
    ".csv": lambda p: pd.read_csv(p, keep_default_na=False, na_values=[""]),
    ".tsv": lambda p: pd.read_csv(p, sep="\t", keep_default_na=False, na_values=[""], quoting=3),
    ".jsonl": lambda p: pd.read_json(p, lines=True, dtype=False),
    ".json": lambda p: pd.read_json(p, dtype=False),
    ".parquet": pd.read_parquet,
    ".txt": lambda p: pd.DataFrame({"text": Path(p).read_text(encoding="utf-8").splitlines()}),
}


def is_embedding_task(task: object) -> bool:
    """Whether ``task`` (a ``TaskSpec``, its JSON record, or a name) is an embedding task."""
    kind = task.get("task_type") if isinstance(task, dict) else getattr(task, "task_type", None)
    return kind == EMBEDDING


@dataclass(frozen=True)
class Pairs:
    """Scored sentence pairs: ``first`` and ``second`` (lists of str) and ``scores`` (float array)."""

    first: list[str]
    second: list[str]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def read_frame(path: str | Path) -> pd.DataFrame:
    """The rows of a data file, by suffix. Raises ``SynePruneError`` for a missing, unreadable or empty file."""
    path = Path(path)
    if path.suffix.lower() not in _READERS:
        raise SynePruneError(f"{path}: unknown data file format '{path.suffix}'; use one of {', '.join(_READERS)}")
    if not path.is_file():
        raise SynePruneError(f"data file {path} not found; check the path")
    try:
        frame = _READERS[path.suffix.lower()](path)
    except (UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        raise SynePruneError(f"{path} cannot be read ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                             "check the file") from None
    if not len(frame):
        raise SynePruneError(f"{path} has no rows; give at least one sentence")
    return frame


def _first_row(path: Path) -> int:
    return 1 if path.suffix.lower() in (".txt", ".jsonl", ".json", ".parquet") else 2


def check_texts(frame: pd.DataFrame, column: str, path: Path) -> list[str]:
    if column not in frame.columns:
        raise SynePruneError(f"{path} has no column '{column}'; its columns are {', '.join(map(str, frame.columns))} (--text-columns)")
    values = frame[column]
    bad = values.isna().to_numpy() | values.astype(str).str.strip().eq("").to_numpy()
    if bad.all():
        raise SynePruneError(f"{path}: the text column '{column}' is empty; give a file with one sentence per row in it "
                             "(--text-columns names the column)")
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + _first_row(path)
        raise SynePruneError(f"{path} row {row} has an empty text in column '{column}' ({int(bad.sum())} such row(s)); "
                             "fill or remove those rows")
    return values.astype(str).tolist()


def _sentence_column(frame: pd.DataFrame, spec: TaskSpec, path: Path) -> str:
    if spec.text_columns:
        if len(spec.text_columns) != 1:
            raise SynePruneError(f"--text-columns names {len(spec.text_columns)} columns; an embedding task's --train-file has one text column")
        return spec.text_columns[0]
    if "text" in frame.columns:
        return "text"
    strings = [c for c in frame.columns if pd.api.types.infer_dtype(frame[c], skipna=True) in ("string", "empty")]
    if len(strings) == 1:
        return strings[0]
    raise SynePruneError(f"{path}: cannot tell the text column among {list(frame.columns)}; pass --text-columns NAME")


def read_sentences(path: str | Path, column: str) -> list[str]:
    """The sentences of column ``column`` of the file ``path``; every row must hold one (``SynePruneError`` otherwise)."""
    return check_texts(read_frame(path), column, Path(path))


def read_pairs(path: str | Path, score_column: str | None = None) -> Pairs:
    """Scored pairs from ``path``: text columns ``sentence1``/``sentence2`` (else the first two string columns) and the
    score column ``score_column`` (default: the first of ``SCORE_COLUMNS`` present). Raises ``SynePruneError`` for a
    file without scores, an empty text, or a score that is not a finite number."""
    path = Path(path)
    frame = read_frame(path)
    scores = score_column or next((c for c in SCORE_COLUMNS if c in frame.columns), None)
    if scores is None or scores not in frame.columns:
        raise SynePruneError(f"{path} has no score column ({score_column or ' or '.join(SCORE_COLUMNS)}); a pairs file needs two text "
                             "columns and a score per row (--label-column names the score column)")
    if {"sentence1", "sentence2"} <= set(frame.columns):
        first, second = "sentence1", "sentence2"
    else:
        strings = [c for c in frame.columns if c != scores and pd.api.types.infer_dtype(frame[c], skipna=True) == "string"]
        if len(strings) < 2:
            raise SynePruneError(f"{path} has fewer than two text columns; a pairs file needs sentence1, sentence2 and a score")
        first, second = strings[:2]
    values = pd.to_numeric(frame[scores], errors="coerce").astype(float).to_numpy()
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0]) + _first_row(path)
        raise SynePruneError(f"{path} row {row} has no numeric score in column '{scores}'; give every pair a score")
    return Pairs(check_texts(frame, first, path), check_texts(frame, second, path), values.astype(np.float32))


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def resolve_embedding_task(spec: TaskSpec) -> TaskSpec:
    """``spec`` (``task_type`` ``embedding``, a ``train_file`` of sentences, an optional ``validation_file`` of scored
    pairs) completed: its text column, metric (``spearman`` with pairs, else ``cosine``), name, absolute paths and the
    files' sha256, every row checked. Raises ``SynePruneError`` for a ``--dataset`` or ``--test-file``, a missing
    file, an empty text column, or a pairs file without scores."""
    if spec.dataset is not None or spec.train_file is None:
        raise SynePruneError("an embedding task reads --train-file (sentences) and optionally --validation-file (scored pairs); "
                             "--dataset is not supported for it")
    if spec.test_file is not None:
        raise SynePruneError("an embedding task has no --test-file; score an export with syne-prune evaluate-retrieval")
    train = Path(spec.train_file)
    frame = read_frame(train)
    column = _sentence_column(frame, spec, train)
    check_texts(frame, column, train)
    files = {"train": str(train.resolve())}
    if spec.validation_file is not None:
        read_pairs(spec.validation_file, spec.label_column if spec.label_column != "label" else None)
        files["validation"] = str(Path(spec.validation_file).resolve())
    name = spec.name or (train.parent.resolve().name if train.stem.lower() in ("train", "sentences") else train.stem)
    return replace(spec, text_columns=(column,), task_type=EMBEDDING, name=name, train_file=files["train"],
                   validation_file=files.get("validation"), metric=PAIRS_METRIC if "validation" in files else SENTENCES_METRIC,
                   sha256=tuple((split, _sha256(path)) for split, path in files.items()))


def check_unchanged(spec: TaskSpec) -> None:
    """Raise ``SynePruneError`` when a file of the resolved ``spec`` changed since it was resolved (its sha256)."""
    files = {"train": spec.train_file, "validation": spec.validation_file}
    for split, digest in spec.sha256:
        if not Path(files[split]).is_file() or _sha256(files[split]) != digest:
            raise SynePruneError(f"the {split} data {files[split]} changed or is gone since the super-network was trained on it; "
                                 "restore the file or train a new super-network")


@dataclass(frozen=True)
class EmbeddingData:
    """An embedding task's data: ``train`` sentences, held-out ``validation`` sentences and the scored ``pairs`` (or None)."""

    train: list[str]
    validation: list[str]
    pairs: Pairs | None


def load_embedding_data(spec: TaskSpec, validation_fraction: float = 0.3, seed: int = 0, max_train_examples: int | None = None,
                        max_eval_examples: int | None = None) -> EmbeddingData:
    """The sentences of a resolved embedding ``spec``, a seeded ``validation_fraction`` of them held out (the
    validation sentences), and its scored pairs; at most ``max_train_examples`` / ``max_eval_examples`` of each."""
    check_unchanged(spec)
    sentences = read_sentences(spec.train_file, spec.text_columns[0])
    order = np.random.RandomState(seed).permutation(len(sentences))
    held = max(1, int(round(validation_fraction * len(sentences)))) if len(sentences) > 1 else 0
    validation, train = [sentences[i] for i in order[:held]], [sentences[i] for i in order[held:]] or sentences
    pairs = None
    if spec.validation_file is not None:
        pairs = read_pairs(spec.validation_file, spec.label_column if spec.label_column != "label" else None)
        if max_eval_examples is not None:
            pairs = Pairs(pairs.first[:max_eval_examples], pairs.second[:max_eval_examples], pairs.scores[:max_eval_examples])
    return EmbeddingData(train[:max_train_examples], validation[:max_eval_examples], pairs)
