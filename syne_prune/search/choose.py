"""Choose a finished trial of a search and export its sub-network (``syne-prune export --search-dir``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from syne_prune.artifacts import TRIALS_FILE, SearchDir
from syne_prune.embedding import export_embedding_subnetwork, is_embedding_task
from syne_prune.errors import SynePruneError
from syne_prune.export import export_subnetwork
from syne_prune.files import refuse_existing
from syne_prune.search import results as R
from syne_prune.search.kinds import get_trial_kind


def choose_trial(search_dir: str | Path, trial_id: int | None = None, max_params: float | None = None) -> dict[str, Any]:
    """A finished trial of a search (its trials.csv row): by id, or the Pareto member with the best validation
    error whose parameter ratio is at most ``max_params``. Raises ``SynePruneError`` for a directory that is not a
    search, no such trial, a trial that did not complete, and a trial id that trials.csv holds more than once
    (two processes ran into the folder at once: which row is meant cannot be known)."""
    search_dir = Path(search_dir)
    SearchDir(search_dir).read_settings(require_trials=True)
    if (trial_id is None) == (max_params is None):
        raise SynePruneError("give exactly one of --trial ID or --max-params RATIO")
    trials = SearchDir(search_dir).trials()
    if trial_id is not None:
        rows = trials[trials["trial_id"] == trial_id]
        if rows.empty:
            last = int(trials["trial_id"].max()) if len(trials) else -1
            raise SynePruneError(f"no trial {trial_id} in {search_dir / TRIALS_FILE}; trial ids run from 0 to {last}")
        _require_unique(trials, trial_id, search_dir)
        row = rows.iloc[0]
        if row["status"] != "completed":
            raise SynePruneError(f"trial {trial_id} did not complete (status {row['status']}); choose a completed trial")
        return row.to_dict()
    front = pd.read_csv(search_dir / R.PARETO_FILE) if (search_dir / R.PARETO_FILE).is_file() else trials.iloc[0:0]
    eligible = front[front["params"] <= max_params]
    if eligible.empty:
        smallest = f"{front['params'].min():.3f}" if len(front) else "none (no completed trial)"
        raise SynePruneError(f"no Pareto sub-network has a parameter ratio <= {max_params}; the smallest has {smallest}")
    row = eligible.sort_values(["error", "params"]).iloc[0].to_dict()
    _require_unique(trials, int(row["trial_id"]), search_dir)
    return row


def _require_unique(trials: pd.DataFrame, trial_id: int, search_dir: Path) -> None:
    count = int((trials["trial_id"] == trial_id).sum())
    if count > 1:
        raise SynePruneError(f"trial {trial_id} appears {count} times in {search_dir / TRIALS_FILE} (two searches wrote into "
                             f"'{search_dir}' at once), so which one is meant is unknown; run the search again into a new --output")


def export_from_search(search_dir: str | Path, output: str | Path, trial_id: int | None = None, max_params: float | None = None,
                       onnx: bool = False, overwrite: bool = False) -> tuple[Path, dict[str, Any]]:
    """Export the chosen sub-network of a search (from its super-network, or the trial's fine-tuned weights in
    standard NAS: the trial kind's ``export_source``); returns (directory, trial row). Raises SynePruneError for
    a directory that is not a search, a trial that cannot be chosen, or an output that exists (without ``overwrite``)."""
    row = choose_trial(search_dir, trial_id, max_params)
    saved = SearchDir(search_dir).read_settings()
    output = Path(output)
    refuse_existing(output, overwrite)
    source = get_trial_kind(saved.trial_kind).export_source(Path(search_dir), saved, row)
    metrics = {k: row[k] for k in ("error", "test_error", "params", "macs", "epoch") if k in row and pd.notna(row[k])}
    if is_embedding_task(source.trained_on.get("task")):  # with the sentence-transformers files of its pooling
        out = export_embedding_subnetwork(source.model, source.space.to_mask(source.config), output, source.tokenizer, saved.supernet,
                                          {"search_space": source.space.name, "config": source.config, "trial_id": int(row["trial_id"]),
                                           "search_dir": str(Path(search_dir).resolve()), "search_metrics": metrics}, onnx, overwrite)
        return out, row
    out = export_subnetwork(source.model, source.space.to_mask(source.config), output, tokenizer=source.tokenizer, onnx=onnx,
                            overwrite=overwrite, subnetwork=source.trained,
                            metadata={"search_space": source.space.name, "config": source.config, "trial_id": int(row["trial_id"]),
                                      "search_dir": str(Path(search_dir).resolve()), "search_metrics": metrics,
                                      **source.trained_on})
    return out, row
