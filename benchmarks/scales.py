"""Benchmark scales shared by the baseline and super-network benchmarks.

``cpu``: the real all-MiniLM-L6-v2 weights (installed package, see syne_prune/models/local_weights.py) and the real
GLUE files; ``gpu``: the paper's BERT-base-cased and RoBERTa-base, skipped (with a message) when their weights cannot
be loaded (no hub access and no local copy)."""
from __future__ import annotations

SCALES = {
    "cpu": {"models": ["sentence-transformers/all-MiniLM-L6-v2"], "epochs": 3, "search_budget_s": 1800, "n_workers": 1},
    "gpu": {"models": ["bert-base-cased", "roberta-base"], "epochs": 5, "search_budget_s": 7200, "n_workers": 1},
}


def short_name(model: str) -> str:
    """``sentence-transformers/all-MiniLM-L6-v2`` -> ``all-MiniLM-L6-v2`` (the paper's ``model`` column style)."""
    return model.rstrip("/").split("/")[-1]


def reachable_models(scale: str) -> list[str]:
    """The scale's models whose config loads here; the others are reported and skipped."""
    from syne_prune.errors import SynePruneError
    from syne_prune.models import load_model_config

    models = []
    for model in SCALES[scale]["models"]:
        try:
            load_model_config(model)
            models.append(model)
        except SynePruneError as error:
            print(f"skipping {model}: {error}", flush=True)
    return models
