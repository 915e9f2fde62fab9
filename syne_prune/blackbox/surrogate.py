"""Surrogate for configurations a blackbox has not recorded: a scikit-learn regressor, chosen by held-out error.

Encoding: the sub-network a configuration selects, as 2L numbers — the share of heads and the share of
FFN neurons each of the L layers keeps (``SearchSpace.to_mask``). The same for every search space, so
configurations that select the same sub-network encode alike, and a model learns from sizes per layer
rather than from the raw hyperparameters (in the large space, 32-bit words of a bit mask).

Targets: the validation error at each fidelity level, the test error and the evaluation seconds.
Params and MACs need no surrogate: they follow exactly from the mask (``objectives.encoder_size``).

Candidates (``SURROGATES``): ``knn`` (k = 5 nearest recorded sub-networks, weighted by inverse distance)
and ``rf`` (random forest, 100 trees, seed 0). ``auto`` takes the one with the lower mean normalised
held-out error (mean absolute error / standard deviation of the target, averaged over the targets),
measured by 5-fold cross-validation over the recorded rows (``held_out_errors``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from syne_prune.blackbox import format as F
from syne_prune.errors import SynePruneError

SURROGATES = ("auto", "knn", "rf", "none")
FOLDS = 5


def _knn(n_rows: int):
    from sklearn.neighbors import KNeighborsRegressor  # slow to import; only when a surrogate is fitted

    return KNeighborsRegressor(n_neighbors=max(1, min(5, n_rows)), weights="distance")


def _rf(n_rows: int):
    from sklearn.ensemble import RandomForestRegressor  # slow to import; only when a surrogate is fitted

    return RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1)


MODELS = {"knn": _knn, "rf": _rf}


def encode(space, configs: list[dict[str, Any]]) -> np.ndarray:
    """(N, 2L) float array: per layer, the kept share of heads, then per layer the kept share of neurons."""
    rows = []
    for config in configs:
        mask = space.to_mask(config)
        rows.append(np.concatenate([mask.heads.float().mean(1).numpy(), mask.neurons.float().mean(1).numpy()]))
    return np.array(rows, dtype=np.float64).reshape(len(configs), -1)


def targets(blackbox: F.Blackbox) -> list[list[str]]:
    """The targets, in the groups one multi-output model predicts together: validation errors and
    evaluation seconds (present in every row), and the test error (missing in some rows from searches)."""
    return [[*F.error_columns(blackbox.levels), "eval_s"], ["test_error"]]


def _fit(kind: str, X: np.ndarray, y: np.ndarray):
    return MODELS[kind](len(X)).fit(X, y if y.shape[1] > 1 else y.ravel())


def held_out_errors(blackbox: F.Blackbox, folds: int = FOLDS) -> pd.DataFrame:
    """Mean absolute error of each candidate on each target over ``folds``-fold cross-validation
    (shuffled, seed 0; the same multi-output models as ``Surrogate``), and that error divided by the
    target's standard deviation. Columns: target, surrogate, mae, normalised_mae, rows. Groups with
    fewer than 4 known rows are left out."""
    from sklearn.model_selection import KFold  # slow to import; only when a surrogate is fitted

    X = encode(blackbox.space(), blackbox.rows[blackbox.names].to_dict("records"))
    out = []
    for group in targets(blackbox):
        y = blackbox.rows[group].to_numpy(dtype=float)
        known = np.isfinite(y).all(1)
        if known.sum() < 4:
            continue
        Xk, yk = X[known], y[known]
        splits = list(KFold(n_splits=min(folds, len(yk)), shuffle=True, random_state=0).split(Xk))
        for name in MODELS:
            predicted = np.empty_like(yk)
            for train, test in splits:
                predicted[test] = _fit(name, Xk[train], yk[train]).predict(Xk[test]).reshape(len(test), -1)
            for column, truth, guess in zip(group, yk.T, predicted.T):
                mae, spread = float(np.abs(guess - truth).mean()), float(truth.std())
                out.append({"target": column, "surrogate": name, "mae": mae, "normalised_mae": mae / spread if spread > 0 else 0.0,
                            "rows": int(known.sum())})
    return pd.DataFrame(out, columns=["target", "surrogate", "mae", "normalised_mae", "rows"])


def choose(errors: pd.DataFrame) -> str:
    """The candidate with the lower mean normalised held-out error (knn when nothing was measured)."""
    if errors.empty:
        return "knn"
    return str(errors.groupby("surrogate")["normalised_mae"].mean().sort_index().idxmin())


class Surrogate:
    """Predicts every target of unrecorded configurations; fitted on all recorded rows."""

    def __init__(self, blackbox: F.Blackbox, kind: str) -> None:
        if kind not in MODELS:
            raise SynePruneError(f"unknown surrogate '{kind}'; choose one of {', '.join(SURROGATES)}")
        self.kind, self.space = kind, blackbox.space()
        X = encode(self.space, blackbox.rows[blackbox.names].to_dict("records"))
        self.models = []
        for group in targets(blackbox):
            y = blackbox.rows[group].to_numpy(dtype=float)
            known = np.isfinite(y).all(1)
            self.models.append((group, _fit(kind, X[known], y[known]) if known.any() else None))

    def predict(self, config: dict[str, Any]) -> dict[str, float]:
        x = encode(self.space, [config])
        out: dict[str, float] = {}
        for group, model in self.models:
            values = model.predict(x).reshape(-1) if model is not None else np.full(len(group), np.nan)
            out.update({column: float(v) for column, v in zip(group, values)})
        out["eval_s"] = max(out["eval_s"], 1e-3)
        return out
