"""The blackbox file: every evaluated sub-network of one super-network, as a directory of two files.

``F/blackbox.json`` (the header, written once, before any row)::

    format_version   1 (FORMAT_VERSION); a reader refuses any other
    kind             "syne-prune-blackbox"
    supernet         {"path": absolute path when recorded, "sha256": sha256 of its supernet.json}
                     (supernet.json holds the sha256 manifest of every weight and tokenizer file, so this
                     one digest identifies the whole checkpoint)
    task, metric     the super-network's task and its metric (error = 1 - metric, or 1 - Pearson)
    search_space     name of the search space, and config_space: its Syne Tune config space
                     (syne_tune.config_space.config_space_to_json_dict)
    shape            {num_layers, num_heads, num_neurons, hidden_size} of the encoder
    size             {seq_len, fixed_params, fixed_macs, full_params, full_macs}: the parts of the model that
                     are never pruned, so params and MACs of any configuration follow exactly from the shape
                     (syne_prune.objectives.encoder_size) without the weights
    fidelity_levels  F: validation errors are recorded after each of F equal chunks of the validation
                     split (the MO-ASHA fidelity levels of a search with --fidelity-levels F, trial.py)
    max_eval_examples, data_dir, source ("samples" or "trials: DIR,..."), created (UTC, ISO 8601)
    sample_stream    the random stream of the uniform samples (record.py SAMPLE_STREAM; absent: 1)

``F/evaluations.csv`` (one row per sub-network, appended and flushed as each is evaluated):

    <one column per hyperparameter of the search space>   the configuration (integers)
    valid_error_1 .. valid_error_F   validation error on the chunks seen after fidelity level k
                                     (valid_error_F: the whole validation split, a search's ``error``)
    test_error                       error on the test split (GLUE dev); empty only for rows taken from a
                                     search that did not score that trial on the test split, and for a
                                     user's task without test data
    params, macs                     ratios to the unpruned model (as a search reports them)
    eval_s                           measured seconds to extract and evaluate the sub-network on the
                                     validation split (all F levels; the test split is not included)

No two rows select the same sub-network (same head and neuron mask). ``read_blackbox`` checks all of
this and refuses a damaged or mismatched file with one ``SynePruneError``.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syne_prune.artifacts import SUPERNET_FILE, SupernetDir, sha256_of
from syne_prune.errors import SynePruneError
from syne_prune.files import append_line, atomic_write_text, writing
from syne_prune.models import EncoderShape
from syne_prune.search import subnetwork_key
from syne_prune.search_spaces import get_search_space

FORMAT_VERSION = 1
KIND = "syne-prune-blackbox"
HEADER_FILE, ROWS_FILE = "blackbox.json", "evaluations.csv"
HEADER_KEYS = ("format_version", "kind", "supernet", "task", "metric", "search_space", "config_space", "shape", "size",
               "fidelity_levels")
VALUE_COLUMNS = ("test_error", "params", "macs", "eval_s")


def error_columns(levels: int) -> list[str]:
    """``valid_error_1`` .. ``valid_error_F``."""
    return [f"valid_error_{level}" for level in range(1, levels + 1)]


@dataclass
class Blackbox:
    """A read and checked blackbox: ``header`` (blackbox.json) and ``rows`` (evaluations.csv)."""

    path: Path
    header: dict[str, Any]
    rows: pd.DataFrame

    @property
    def levels(self) -> int:
        return int(self.header["fidelity_levels"])

    @property
    def names(self) -> list[str]:
        """Hyperparameter names of the search space, in config-space order."""
        return list(self.header["config_space"])

    def space(self):
        """The search space (syne_prune.search_spaces) the configurations belong to."""
        return get_search_space(self.header["search_space"], EncoderShape(**self.header["shape"]))


def columns(header: dict[str, Any]) -> list[str]:
    """The columns of evaluations.csv, in order."""
    return [*header["config_space"], *error_columns(int(header["fidelity_levels"])), *VALUE_COLUMNS]


def create(path: Path, header: dict[str, Any]) -> None:
    """Write the header and an empty evaluations.csv (a new blackbox)."""
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path / ROWS_FILE, _csv_line(columns(header)))
    try:
        atomic_write_text(path / HEADER_FILE, json.dumps(header, indent=2) + "\n")  # last: a blackbox is complete once it is there
    except SynePruneError:
        (path / ROWS_FILE).unlink(missing_ok=True)
        raise


def append_row(path: Path, header: dict[str, Any], row: dict[str, Any]) -> None:
    """Append one evaluation, flushed to disk (an interrupted recording keeps every finished row; a failed write
    leaves the file as it was and is a one-line error naming it)."""
    values = [repr(float(row[c])) if isinstance(row[c], (float, np.floating)) else row[c] for c in columns(header)]
    append_line(path / ROWS_FILE, _csv_line(values))


def _csv_line(values: list[Any]) -> str:
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue()


def read_header(path: str | Path) -> dict[str, Any]:
    """blackbox.json of ``path``, checked (keys, kind, format version)."""
    path = Path(path)
    if not (path / HEADER_FILE).is_file():
        raise SynePruneError(f"'{path}' is not a blackbox (no {HEADER_FILE}); give the --output of 'syne-prune blackbox record'")
    try:
        header = json.loads((path / HEADER_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SynePruneError(f"{path / HEADER_FILE} is not valid JSON; the blackbox is damaged, record it again") from None
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise SynePruneError(f"{path / HEADER_FILE} is not a syne-prune blackbox header; record the blackbox again")
    if header.get("format_version") != FORMAT_VERSION:
        raise SynePruneError(f"{path / HEADER_FILE} has format version {header.get('format_version')!r}, this syne-prune reads "
                             f"{FORMAT_VERSION}; record the blackbox again with this version")
    missing = [k for k in HEADER_KEYS if k not in header]
    if missing or not isinstance(header["config_space"], dict) or int(header["fidelity_levels"]) < 1:
        raise SynePruneError(f"{path / HEADER_FILE} lacks {', '.join(missing) or 'a valid config_space/fidelity_levels'}; record the blackbox again")
    return header


def read_blackbox(path: str | Path, supernet: str | Path | None = None) -> Blackbox:
    """Read and check a blackbox; with ``supernet``, also that it was recorded from that checkpoint
    (same supernet.json sha256 and search space). Raises SynePruneError on any defect."""
    path = Path(path)
    header = read_header(path)
    if supernet is not None:
        check_supernet(header, supernet)
    if not (path / ROWS_FILE).is_file():
        raise SynePruneError(f"blackbox '{path}' lacks {ROWS_FILE}; record it again")
    try:
        rows = pd.read_csv(path / ROWS_FILE)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise SynePruneError(f"{path / ROWS_FILE} is not a readable CSV ({str(error).splitlines()[0]}); record the blackbox again") from None
    wanted = columns(header)
    missing = [c for c in wanted if c not in rows.columns]
    if missing:
        raise SynePruneError(f"{path / ROWS_FILE} lacks column(s) {', '.join(missing)}; record the blackbox again")
    required = [c for c in wanted if c != "test_error"]
    for column in wanted:
        if len(rows) and not pd.api.types.is_numeric_dtype(rows[column]):
            raise SynePruneError(f"{path / ROWS_FILE}: column {column} holds non-numbers; record the blackbox again")
    bad = rows[required].isna().any(axis=1) | ~np.isfinite(rows[required].to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        raise SynePruneError(f"{path / ROWS_FILE}: row {int(np.flatnonzero(bad)[0]) + 2} has a missing, NaN or infinite value; "
                             f"delete that line and record again (recorded configurations are skipped)")
    blackbox = Blackbox(path, header, rows[wanted].reset_index(drop=True))
    _check_rows(blackbox)
    return blackbox


def _check_rows(blackbox: Blackbox) -> None:
    space = blackbox.space()
    if list(space.config_space) != blackbox.names:
        raise SynePruneError(f"{blackbox.path / HEADER_FILE}: its config_space does not match the '{space.name}' search space of its "
                             f"shape; record the blackbox again")
    keys = set()
    for index, config in enumerate(blackbox.rows[blackbox.names].to_dict("records")):
        try:
            key = subnetwork_key(space, config)
        except SynePruneError as error:
            raise SynePruneError(f"{blackbox.path / ROWS_FILE} row {index + 2}: {error}") from None
        if key in keys:
            raise SynePruneError(f"{blackbox.path / ROWS_FILE} row {index + 2} repeats a sub-network recorded above; delete the line")
        keys.add(key)


def supernet_digest(supernet: str | Path) -> str:
    """sha256 of a super-network's supernet.json (which lists the sha256 of all its other files)."""
    SupernetDir(supernet).read()  # a clear error if it is no checkpoint
    return sha256_of(Path(supernet) / SUPERNET_FILE)


def check_supernet(header: dict[str, Any], supernet: str | Path) -> None:
    """Refuse a blackbox recorded from another super-network or search space than ``supernet``."""
    digest = supernet_digest(supernet)
    if header["supernet"].get("sha256") != digest:
        raise SynePruneError(f"the blackbox was recorded from another super-network (sha256 of supernet.json "
                             f"{str(header['supernet'].get('sha256'))[:12]}..., '{supernet}' has {digest[:12]}...); "
                             f"give the super-network it was recorded from, or record a new blackbox")
    space = SupernetDir(supernet).read().get("search_space")
    if space != header["search_space"]:
        raise SynePruneError(f"the blackbox holds the '{header['search_space']}' search space, '{supernet}' was trained for "
                             f"'{space}'; record a blackbox for this super-network")


