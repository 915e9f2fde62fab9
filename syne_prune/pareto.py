"""The Pareto set of minimised objectives and its hypervolume, as the search and the blackbox benchmarks report them.

Objectives are the reported values (error = 1 - metric; params, macs and latency are ratios to the unpruned
model); the reference point is 1.0 in every objective (the unpruned model's size, an error of 1), and points
beyond it contribute nothing. Only trials evaluated at full fidelity enter the Pareto set.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

REFERENCE_POINT = 1.0


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``points`` (minimised) that no other row dominates.

    A row with a NaN or inf entry is never non-dominated and dominates nothing (NaN compares False with
    everything, so it would otherwise always be on the front; -inf would dominate every row)."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    finite = np.isfinite(points).all(1)
    dominated = ((points[:, None, :] >= points[None, :, :]).all(-1) & (points[:, None, :] > points[None, :, :]).any(-1))
    return finite & ~(dominated & finite[None, :]).any(1)


def pareto_set(trials: pd.DataFrame, objectives: list[str], max_fidelity: int) -> pd.DataFrame:
    """The rows of ``trials`` (a ledger: ``status``, ``fidelity`` and the ``objectives`` columns) completed at
    ``max_fidelity`` or beyond that no other such row dominates, sorted by the size objectives, then the error."""
    done = trials[(trials["status"] == "completed") & (trials["fidelity"] >= max_fidelity)]
    if done.empty:
        return done
    front = done[non_dominated(done[objectives].to_numpy(dtype=float))]
    return front.sort_values(objectives[1:] + objectives[:1] if len(objectives) > 1 else objectives)


def hypervolume(points: np.ndarray, reference: float = REFERENCE_POINT) -> float:
    """Hypervolume (pymoo) of ``points`` (rows, minimised) up to ``reference`` in every objective; rows
    beyond the reference or with a NaN or inf entry add nothing (such trials are recorded as failed)."""
    from pymoo.indicators.hv import HV  # heavy (pymoo): not needed to read or write the ledger

    inside = points[np.isfinite(points).all(1) & (points < reference).all(1)] if len(points) else points
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=np.full(points.shape[1], reference))(inside))
