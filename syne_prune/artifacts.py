"""The files one stage of syne-prune hands to the next, each read and written here and nowhere else.

============================  ====================  ==================================  =====================================
file                          directory             written by                          read by
============================  ====================  ==================================  =====================================
``supernet.json``             a super-network       train-supernet                      search, export, recover, blackbox
``search.json``               a search              search                              search --resume, export, blackbox
``trials.csv``                a search              search (one row as each trial ends)  export, blackbox record, benchmarks
``test_errors.csv``           a search              search (``--test-split pareto``)    read together with ``trials.csv``
``summary.json``              a search, a benchmark search, blackbox benchmark          people, benchmarks
``syne_prune.json``           an export             export, recover, baselines          recover, export
============================  ====================  ==================================  =====================================

Every JSON file carries ``format_version`` (``FORMAT_VERSION``). ``search.json``, ``summary.json`` and
``syne_prune.json`` written before the field existed hold the keys of version 1 and load as version 1;
``supernet.json`` has always carried it. A file of a newer version than this package knows is refused in one line
(upgrade syne-prune), as is a file that is not valid JSON (the stage that writes it names the fix). JSON files are
written to a hidden temporary file and renamed into place: a reader never sees half a file.

The keys of each record are listed in the docstring of its reader; every record is a plain ``dict`` (JSON
round-trip), except ``search.json``, whose five keys are a ``SearchRecord``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from syne_prune.errors import SynePruneError
from syne_prune.files import append_line, atomic_write, atomic_write_text

FORMAT_VERSION = 1
SUPERNET_FILE = "supernet.json"
SEARCH_FILE = "search.json"
TRIALS_FILE = "trials.csv"
TEST_ERRORS_FILE = "test_errors.csv"  # trial_id,test_error of the trials scored on the test split after the search
SUMMARY_FILE = "summary.json"
EXPORT_FILE = "syne_prune.json"


# ---- JSON records: versioned, written whole ----

def write_json(path: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write ``record`` (JSON-serialisable; numpy scalars become floats) to ``path`` with ``format_version`` first,
    through a hidden temporary file renamed into place; returns what was written. A failed write is a one-line
    SynePruneError naming the path and the cause (``files.write_failure``); the old file stays, no temporary is left."""
    record = {"format_version": FORMAT_VERSION, **{k: v for k, v in record.items() if k != "format_version"}}
    atomic_write_text(path, json.dumps(record, indent=2, default=float) + "\n")
    return record


def read_json(path: str | Path, what: str, fix: str, require_version: bool = False) -> dict[str, Any]:
    """The JSON object in ``path``; ``what`` names it and ``fix`` says what to do in the one-line errors.
    Raises SynePruneError for a missing file, invalid JSON, a value that is not an object, no ``format_version``
    where ``require_version``, or a version newer than ``FORMAT_VERSION``. A file without ``format_version``
    (where allowed) is returned as version 1."""
    path = Path(path)
    if not path.is_file():
        raise SynePruneError(f"{what} '{path.parent}' has no {path.name}; {fix}")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SynePruneError(f"{path} is not valid JSON ({getattr(error, 'msg', error)}); {fix}") from None
    if not isinstance(record, dict):
        raise SynePruneError(f"{path} does not hold a JSON object; {fix}")
    version = record.get("format_version", None if require_version else 1)
    if not isinstance(version, int) or version < 1:
        raise SynePruneError(f"{path} has no valid format_version; {fix}")
    if version > FORMAT_VERSION:
        raise SynePruneError(f"{path} has format version {version}, this syne-prune reads up to {FORMAT_VERSION}; "
                             "upgrade syne-prune (pip install -U syne-prune)")
    return {**record, "format_version": version}


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- how a model was trained: precision and device ----

COMPUTE_KEY = "compute"


def compute_record(precision: str, device: str) -> dict[str, str]:
    """The ``compute`` entry of ``supernet.json`` and of an export's ``recovery`` or ``baseline`` record: the precision a model was
    trained in (``fp32``, ``bf16``, ``fp16``: its forward passes; the weights are float32 in all three) and the kind
    of device (``cpu``, ``cuda``)."""
    return {"precision": precision, "device": device}


# ---- the super-network ----

class SupernetDir:
    """A super-network directory (``train-supernet --output``): ``save_pretrained``'s files, the tokenizer and
    ``supernet.json``, written last (a directory without it is incomplete).

    ``supernet.json`` keys: ``format_version``, ``model``, ``initialised_from``, ``model_type``, ``task``,
    ``metric``, ``search_space``, ``strategy``, ``teacher`` (``{"source", "path", "validation", "test"}``, with
    ``fine_tune`` when ``--teacher auto`` chose it from a grid of learning rates; or null), ``seed``,
    ``hyperparameters`` (the training settings), ``num_train_examples`` / ``num_validation_examples`` /
    ``num_test_examples``, ``history``, ``train_time_s``, ``metrics`` (largest and smallest sub-network, validation
    and test), ``constant_answer``, ``importance`` (the ordering of heads and neurons, or null), ``versions``,
    ``compute`` (``compute_record``: the precision and device it was trained in; a record without it: fp32), and
    ``manifest`` (sha256 of every other file, ``{name: hex}``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = self.path / SUPERNET_FILE

    def is_complete(self) -> bool:
        """True when ``supernet.json`` is there (it is written last)."""
        return self.file.is_file()

    def manifest(self) -> dict[str, str]:
        """sha256 of every file in the directory but ``supernet.json`` and hidden entries."""
        return {p.name: sha256_of(p) for p in sorted(self.path.iterdir())
                if p.is_file() and p.name != SUPERNET_FILE and not p.name.startswith(".")}

    def write(self, metadata: dict[str, Any]) -> dict[str, Any]:
        """Write ``supernet.json`` from ``metadata`` plus the manifest of the files now in the directory; returns it."""
        return write_json(self.file, {**metadata, "manifest": self.manifest()})

    def read(self) -> dict[str, Any]:
        """``supernet.json``, checked to be a complete record of this format. Raises SynePruneError (one line) for
        a missing directory or file, invalid JSON, or a record of another format."""
        if not self.path.is_dir():
            raise SynePruneError(f"super-network '{self.path}' not found; give the --output directory of train-supernet")
        if not self.is_complete():
            raise SynePruneError(f"'{self.path}' is not a complete super-network checkpoint (no {SUPERNET_FILE}); finish it with "
                                 "train-supernet --resume or train a new one")
        record = read_json(self.file, "super-network", "the checkpoint is damaged, train or copy it again", require_version=True)
        if "manifest" not in record:
            raise SynePruneError(f"{self.file} is not a syne-prune {FORMAT_VERSION} checkpoint; train it again with this version")
        return record

    def task(self) -> str | None:
        """The task the super-network was trained on, or None when the directory holds no ``supernet.json``."""
        return self.read().get("task") if self.is_complete() else None

    def teacher_path(self) -> str | None:
        """The path of the fixed teacher it was trained against (``--teacher``), or None."""
        return (self.read().get("teacher") or {}).get("path")


# ---- a search ----

@dataclass
class SearchRecord:
    """``search.json``: ``settings`` (what a resumed search must share with the one it continues: the generic
    settings, ``trial_kind`` and ``trial_settings``), ``trial_kind`` (``weight-sharing`` or ``standard``),
    ``supernet`` (absolute path, or None in standard NAS), ``search_space`` (name) and ``task`` (a built-in task's
    name, or the user's resolved task: its files with their sha256, columns, type, metric and class names, as
    ``syne_prune.data.TaskSpec.to_json`` writes it) and ``compute`` (``{"precision", "device"}`` the trials compute
    in, ``SearchBackend.compute_record``; None in a search recorded before it was kept)."""

    settings: dict[str, Any]
    trial_kind: str = "weight-sharing"
    supernet: str | None = None
    search_space: str | None = None
    task: str | dict[str, Any] | None = None
    compute: dict[str, str] | None = None


class SearchDir:
    """A search directory (``search --output``): ``search.json``, the ledger ``trials.csv`` (+ ``test_errors.csv``),
    ``summary.json`` and the files derived from the ledger (``syne_prune.search``)."""

    FIX = "give the --output of a search"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.settings_file = self.path / SEARCH_FILE
        self.trials_file = self.path / TRIALS_FILE
        self.summary_file = self.path / SUMMARY_FILE

    def has_settings(self) -> bool:
        return self.settings_file.is_file()

    def write_settings(self, record: SearchRecord) -> None:
        write_json(self.settings_file, asdict(record))

    def read_settings(self, require_trials: bool = False) -> SearchRecord:
        """``search.json`` (and, with ``require_trials``, the check that ``trials.csv`` exists). Raises
        SynePruneError (one line) when the directory is not a search or the file is damaged."""
        if not self.has_settings() or (require_trials and not self.trials_file.is_file()):
            wanted = f"{SEARCH_FILE} / {TRIALS_FILE}" if require_trials else SEARCH_FILE
            raise SynePruneError(f"'{self.path}' is not a search directory (no {wanted}); {self.FIX}")
        record = read_json(self.settings_file, "search", f"the search directory is damaged; {self.FIX}")
        if not isinstance(record.get("settings"), dict):
            raise SynePruneError(f"{self.settings_file} has no settings; the search directory is damaged; {self.FIX}")
        trial_kind = record.get("trial_kind", record.get("mode", "weight-sharing"))  # "mode": files of earlier versions
        return SearchRecord(settings=_search_settings(record["settings"], trial_kind), trial_kind=trial_kind,
                            supernet=record.get("supernet"), search_space=record.get("search_space"), task=record.get("task"),
                            compute=record.get("compute"))

    def trials(self) -> pd.DataFrame:
        """``trials.csv`` with the test errors scored after the search (``test_errors.csv``) filled in."""
        return read_trials(self.trials_file)

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json(self.summary_file, summary)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``: the search's settings, hypervolume, trial counts, wall-clock and versions (the names of
        earlier versions' files read as today's: ``mode`` as ``trial_kind``, the unpruned ``validation_error`` as
        ``error``)."""
        summary = read_json(self.summary_file, "search", f"the search did not finish; resume it with --resume or {self.FIX}")
        if "mode" in summary:
            summary["trial_kind"] = summary.pop("mode")
        unpruned = summary.get("unpruned")
        if isinstance(unpruned, dict) and "validation_error" in unpruned:
            unpruned["error"] = unpruned.pop("validation_error")
        return summary


def _search_settings(settings: dict[str, Any], trial_kind: str) -> dict[str, Any]:
    """search.json's ``settings`` as this version writes them: earlier versions kept the weight-sharing settings
    (``supernet``, ``fidelity_levels``) beside the generic ones and standard NAS's under ``finetune``; today's
    keep the trial kind's under ``trial_settings``, named by ``trial_kind``."""
    if not {"supernet", "fidelity_levels", "finetune"} & set(settings):
        return settings
    upgraded = {k: v for k, v in settings.items() if k not in ("supernet", "fidelity_levels", "finetune", "trial_timeout_s")}
    upgraded["trial_kind"] = trial_kind
    upgraded["trial_settings"] = settings.get("finetune") if trial_kind == "standard" else {
        "supernet": settings.get("supernet"), "fidelity_levels": settings.get("fidelity_levels", 9)}
    return upgraded


class TrialLedger:
    """trials.csv, one row per finished trial, flushed to disk as each arrives (a crash loses nothing)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        """``columns``: this version's header. A ledger written by an earlier version with fewer columns gets
        the missing ones (empty in its old rows), so appended rows line up with the header."""
        self.path = path
        self.columns = columns
        if not path.exists():
            atomic_write_text(path, _csv_line(columns))
        elif columns:
            with open(path, newline="") as handle:
                header = next(csv.reader(handle), [])
            if header != columns:
                old = pd.read_csv(path)
                self.columns = header + [c for c in columns if c not in header]
                atomic_write(path, lambda tmp: old.reindex(columns=self.columns).to_csv(tmp, index=False))

    def append(self, row: dict[str, Any]) -> None:
        """One finished trial, flushed to disk; a failed write leaves the file as it was (``files.append_line``)."""
        text = io.StringIO()
        csv.DictWriter(text, self.columns, extrasaction="ignore").writerow(row)
        append_line(self.path, text.getvalue())

    def read(self) -> pd.DataFrame:
        return read_trials(self.path) if self.path.exists() else pd.DataFrame(columns=self.columns)


def _csv_line(values: list[Any]) -> str:
    text = io.StringIO()
    csv.writer(text).writerow(values)
    return text.getvalue()


def read_trials(path: Path) -> pd.DataFrame:
    """trials.csv with the test errors scored after the search (test_errors.csv beside it) filled in."""
    trials = pd.read_csv(path)
    scored_path = Path(path).parent / TEST_ERRORS_FILE
    if scored_path.exists() and len(trials) and "test_error" in trials:
        scored = pd.read_csv(scored_path).drop_duplicates("trial_id", keep="last").set_index("trial_id")["test_error"]
        trials["test_error"] = trials["test_error"].astype(float).fillna(trials["trial_id"].map(scored))
    return trials


def append_test_error(directory: Path, trial_id: int, test_error: float) -> None:
    """One scored trial, flushed at once (an interrupted scoring keeps what it has and resumes from there)."""
    path = Path(directory) / TEST_ERRORS_FILE
    if not path.exists():
        atomic_write_text(path, _csv_line(["trial_id", "test_error"]))
    append_line(path, _csv_line([trial_id, repr(float(test_error))]))



# ---- an export ----

class ExportDir:
    """An export directory (``export --output``, ``recover --output``, a baseline's budget): the pruned model as
    ``from_pretrained`` loads it, ``syne_prune.json`` and the model card written from it (``README.md``,
    ``syne_prune.model_card``).

    ``syne_prune.json`` keys: ``format_version``, ``source_model``, ``heads_per_layer``, ``neurons_per_layer``,
    ``kept_layers``, ``params``, ``encoder_params``, ``params_ratio``, ``encoder_params_ratio``,
    ``macs_per_sequence_128``, ``macs_ratio``, ``versions``, ``search_space`` and ``config`` (the sub-network), and
    where known ``task`` / ``data`` (the task record), ``supernet``, ``trial_id``, ``search_dir``,
    ``search_metrics``, ``baseline`` and ``recovery`` (``syne_prune.recovery``: settings, history, ``epochs_run``,
    ``stop_reason``, ``before`` / ``after`` / ``last``, ``kept_epoch``, ``compute``); ``baseline`` and ``recovery`` carry
    ``compute`` (``compute_record``: the precision and device the model was fine-tuned in; absent: fp32).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = self.path / EXPORT_FILE

    def is_export(self) -> bool:
        return self.file.is_file()

    def write(self, record: dict[str, Any]) -> dict[str, Any]:
        return write_json(self.file, record)

    def read(self) -> dict[str, Any]:
        """``syne_prune.json``. Raises SynePruneError (one line) for a directory that is not an export, invalid
        JSON, or a record without the pruned shape."""
        if not self.path.is_dir() or not self.is_export():
            raise SynePruneError(f"'{self.path}' is not a syne-prune export (no {EXPORT_FILE}); give a directory written by "
                                 "`syne-prune export`")
        record = read_json(self.file, "export", "export it again")
        if "heads_per_layer" not in record:
            raise SynePruneError(f"{self.file} is not a syne-prune export record; give a directory written by `syne-prune export`")
        return record
