"""A task's examples: texts and labels of one split (``Split``)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syne_prune.errors import SynePruneError


@dataclass
class Split:
    """Texts (one list per text column) and labels of one split."""

    texts: list[list[str]]
    labels: np.ndarray
    num_choices: int = 0  # multiple choice: texts are [contexts, starts, ending 0, ending 1, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> "Split":
        return Split([[column[i] for i in index] for column in self.texts], self.labels[index], self.num_choices)


def require_finite_scores(scores: np.ndarray, source: str, first_line: int = 1, unit: str = "line") -> None:
    """Regression scores must be finite: NaN or inf (which ``float`` parses) would poison the loss and the metric.
    Raises ``SynePruneError`` naming ``source`` and the line (``first_line`` is the line of ``scores[0]``)."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise SynePruneError(f"{source} {unit} {first_line + int(bad[0])} has a non-finite score {scores[bad[0]]} "
                             f"({len(bad)} such row(s)); fix or remove those rows")
