"""Extending syne-prune with a task and a metric: a generated three-class task ``synthetic_length`` (is a sentence
short, medium or long?) scored by balanced accuracy. In the package: one ``Task`` in ``TASKS`` of
``syne_prune/data/tasks.py`` and one ``Metric`` in ``METRICS`` of ``syne_prune/data/metrics.py``; here both are
registered in-process and a super-network is trained on the task, as ``train-supernet --task synthetic_length`` would.
(A registration in-process reaches only this process: a search's pool workers and trial processes see the task once
it is in the package's registry.)"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# --8<-- [start:task]
import numpy as np
from sklearn.metrics import balanced_accuracy_score

from syne_prune.data import METRICS, TASKS, Metric, Split, Task


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Mean recall over the classes (labels and predictions: class ids)."""
    return float(balanced_accuracy_score(labels, predictions))


def synthetic_length(seed: int) -> tuple[Split, Split]:
    """(train, test): sentences of 2-4, 6-8 or 10-12 words, labelled 0, 1, 2."""
    rng = np.random.RandomState(seed)
    words = ["good", "film", "the", "plot", "was", "not", "dull", "great", "acting", "ending"]

    def draw(count: int) -> Split:
        labels = rng.randint(3, size=count)
        texts = [" ".join(rng.choice(words, size=4 * label + 2 + rng.randint(3))) for label in labels]
        return Split([texts], labels.astype(np.int64))

    return draw(600), draw(150)


METRICS["balanced-accuracy"] = Metric("balanced-accuracy", balanced_accuracy, ("classification",))
TASKS["synthetic_length"] = Task("synthetic_length", 3, "balanced-accuracy", balanced_accuracy, ("sentence",), ("", None), "",
                                 generator=synthetic_length)
# --8<-- [end:task]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny_model_dir

    from syne_prune.artifacts import SupernetDir
    from syne_prune.supernet import TrainingConfig, train_supernet

    root = Path(tempfile.mkdtemp())
    model = tiny_model_dir(root / "model")
    # --8<-- [start:run]
    train_supernet(TrainingConfig(model=str(model), task="synthetic_length", output=str(root / "supernet"), teacher=None,
                                  importance="none", epochs=3, batch_size=16, lr=3e-3, max_length=32), progress=False)
    # --8<-- [end:run]
    record = SupernetDir(root / "supernet").read()
    assert record["metric"] == "balanced-accuracy", record["metric"]
    largest = record["metrics"]["largest"]["validation"]
    assert 0.0 <= largest["balanced-accuracy"] <= 1.0 and abs(largest["error"] - (1 - largest["balanced-accuracy"])) < 1e-9
    print(f"synthetic_length: the unpruned super-network's validation balanced accuracy is {largest['balanced-accuracy']:.3f}")

if __name__ == "__main__":
    main()
