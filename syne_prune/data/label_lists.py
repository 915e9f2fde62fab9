"""Labels that are lists, in the user's own data: a set of labels per example (multi-label) or one tag per word
(token classification), and CoNLL files (``read_conll``). Each reader checks every row and names the file, the line
or record, the column and the fix in one ``SynePruneError``."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from syne_prune.errors import SynePruneError

from .task_types import objects

_GENERIC_LABEL = re.compile(r"LABEL_\d+")
CONLL_COLUMNS = ("tokens", "label")
"""The columns a CoNLL file is read into: the words of a sentence and their tags."""
DOCSTART = "-DOCSTART-"


def is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def own_label_names(model_config: Any) -> tuple[str, ...]:
    """A model's own label names in id order (a fine-tuned head's ``id2label``), or () for none or transformers'
    ``LABEL_i`` placeholders."""
    own = {int(i): str(n) for i, n in (getattr(model_config, "id2label", None) or {}).items()}
    if own and not all(_GENERIC_LABEL.fullmatch(n) for n in own.values()):
        return tuple(own[i] for i in range(len(own)))
    return ()


def read_conll(path: Path) -> pd.DataFrame:
    """The sentences of a CoNLL file: one token per line, its first field the word and its last field the tag
    (fields split on whitespace), a blank line between sentences, ``-DOCSTART-`` lines skipped. A line-based format
    that pandas has no reader for, so read here. Returns a frame with the columns ``tokens`` and ``label`` (lists),
    one row per sentence; ``frame.attrs["lines"]`` holds each sentence's first line. Raises ``SynePruneError`` for a
    line with a single field and a file with no sentence; ``UnicodeDecodeError`` for a file that is not UTF-8."""
    sentences, lines, words, tags, start = [], [], [], [], 0
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate([*handle, ""], start=1):
            fields = line.split()
            if fields and fields[0] != DOCSTART:
                if len(fields) < 2:
                    raise SynePruneError(f"{path} line {number} has one field ({fields[0]!r}); give the word first and its tag last")
                if not words:
                    start = number
                words.append(fields[0])
                tags.append(fields[-1])
            elif words:
                sentences.append((words, tags))
                lines.append(start)
                words, tags = [], []
    if not sentences:
        raise SynePruneError(f"{path} holds no sentence; give one word and its tag per line, a blank line between sentences")
    frame = pd.DataFrame(sentences, columns=list(CONLL_COLUMNS))
    frame.attrs["lines"] = lines
    return frame


def numbers_are_ids(names: tuple[str, ...]) -> bool:
    """Whether integer labels in the data are ids into ``names`` (True) or names themselves (False: every name is an
    integer literal, as star ratings ``'1'``..``'5'`` or the ``'0'``..``'N'`` of a model without label names, where a
    label's number is its name)."""
    return not all(re.fullmatch(r"-?\d+", name) for name in names)


def _names(tables: dict, spec, model_config: Any, values) -> tuple[str, ...]:
    """The label names in id order: the model's own, else every label seen, sorted (integers: 0..max, as ids)."""
    own = own_label_names(model_config)
    if own:
        return own
    seen = {v for table in tables.values() for row in table.frame[spec.label_column] for v in values(row)}
    if seen and all(isinstance(v, (int, np.integer)) for v in seen):
        return tuple(str(i) for i in range(int(max(seen)) + 1))
    return tuple(sorted(map(str, seen)))


def _rows(table, spec, what: str):
    """The rows' label lists; a row whose label is not a list is a ``SynePruneError``."""
    for row, value in enumerate(table.frame[spec.label_column]):
        if not is_list(value):
            raise SynePruneError(f"{table.where(row)} has the label {value!r} in column '{spec.label_column}', not a list of {what}; "
                                 f"give every row a list, or choose another --task-type")
        yield row, list(value)


def _ids(table, spec, row: int, values: list, names: tuple[str, ...], what: str) -> list[int]:
    """The ids of one row's labels: strings by name, integers as ids (0 .. len(names) - 1) unless the names are numbers
    (``numbers_are_ids``)."""
    index = {name: i for i, name in enumerate(names)}
    as_ids = numbers_are_ids(names)
    ids = [(int(v) if 0 <= v < len(names) else None) if as_ids and isinstance(v, (int, np.integer)) else index.get(str(v))
           for v in values]
    if None in ids:
        unknown = values[ids.index(None)]
        raise SynePruneError(f"{table.where(row)} has the {what} {str(unknown)!r} in column '{spec.label_column}', which is not one "
                             f"of {list(names) if not isinstance(unknown, (int, np.integer)) else f'the ids 0..{len(names) - 1}'}; "
                             f"fix the {what} or give a model whose id2label has it")
    return ids


def _checked_names(tables: dict, spec, model_config: Any, what: str, labels: Callable) -> tuple[str, ...]:
    """The names in id order (``_names``) of list labels called ``what`` (``labels`` or ``tags``), after every row of
    every table was checked to hold a list; then every table read with ``labels(table, spec, names)``, which checks
    each value is known."""
    for table in tables.values():
        list(_rows(table, spec, what))
    names = _names(tables, spec, model_config, lambda row: list(row))
    for table in tables.values():
        labels(table, spec, names)
    return names


def label_set_names(tables: dict, spec, model_config: Any) -> tuple[str, ...]:
    """Multi-label: the label names in id order (``_names``); every row checked (``label_sets``)."""
    return _checked_names(tables, spec, model_config, "labels", label_sets)


def label_sets(table, spec, names: tuple[str, ...]) -> np.ndarray:
    """Multi-label: each row's labels as 0/1 indicators, float32 [rows, len(names)]."""
    matrix = np.zeros((len(table.frame), len(names)), dtype=np.float32)
    for row, values in _rows(table, spec, "labels"):
        matrix[row, _ids(table, spec, row, values, names, "label")] = 1.0
    return matrix


def tag_names(tables: dict, spec, model_config: Any) -> tuple[str, ...]:
    """Token classification: the tag names in id order (``_names``); every row checked (``tag_ids``): words and
    tags lists of the same length, not empty, every tag known."""
    if len(spec.text_columns) != 1:
        raise SynePruneError(f"token classification reads one column of words, --text-columns names {len(spec.text_columns)}; give one")
    return _checked_names(tables, spec, model_config, "tags", tag_ids)


def tag_ids(table, spec, names: tuple[str, ...]) -> np.ndarray:
    """Token classification: each row's tag ids, an object array of int64 arrays (one id per word)."""
    words_column = spec.text_columns[0]
    rows = []
    for row, tags in _rows(table, spec, "tags"):
        words = table.frame[words_column].iloc[row]
        if not is_list(words):
            raise SynePruneError(f"{table.where(row)} has {words!r} in column '{words_column}', not a list of words; give every row a "
                                 "list of words (or pass the column of word lists as --text-columns)")
        if len(words) != len(tags) or not len(words):
            raise SynePruneError(f"{table.where(row)} has {len(words)} words in column '{words_column}' but {len(tags)} tags in "
                                 f"column '{spec.label_column}'; give one tag per word (and at least one word)")
        rows.append(np.asarray(_ids(table, spec, row, tags, names, "tag"), dtype=np.int64))
    return objects(rows)


def word_lists(table, column: str) -> list[list[str]]:
    """Token classification: a column of word lists as lists of strings."""
    return [[str(word) for word in words] for words in table.frame[column]]
