"""The paper's result tables (benchmarks/anchors/plm_pruning_results, README there) on our size axis: the share of the prunable
encoder parameters.

The paper's ``threshold`` is a ratio of *all* parameters (embeddings + encoder + task head; anchors README). Its
models keep a fixed part whole (BERT-base-cased: its embeddings, pooler and classifier, about a fifth), so a ratio
``t`` of all parameters holds ``p = (t - f) / (1 - f)`` of the prunable ones, with ``f`` the fixed share counted
by ``objectives.subnet_size`` (the one counter) on the model built from its config (no weights needed).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

# the published configs of the paper's models (their config.json on the hub), enough for the counter
PAPER_CONFIGS = {
    "bert-base-cased": dict(model_type="bert", vocab_size=28996, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                            intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2),
    "roberta-base": dict(model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1),
}


def fixed_share(model: str, num_labels: int = 2) -> float:
    """Share of ``model``'s parameters that pruning keeps whole (all but the encoder layers), in [0, 1). Raises
    KeyError for a model not in PAPER_CONFIGS."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from syne_prune.objectives import subnet_size

    settings = dict(PAPER_CONFIGS[model])
    config = AutoConfig.for_model(settings.pop("model_type"), num_labels=num_labels, **settings)
    with torch.device("meta"):  # shapes only: counting needs no memory and no weights
        built = AutoModelForSequenceClassification.from_config(config)
    size = subnet_size(built)
    return (size.params - size.encoder_params) / size.params


ANCHORS = Path(__file__).resolve().parent / "anchors" / "plm_pruning_results"  # committed copies of the paper's tables
SIZES_TABLE = "data_relative_to_model_size.csv"  # nas, standard_nas and the baselines
SCHEDULERS_TABLE = "data_relative_to_model_size_ws_nas.csv"  # WS-NAS per scheduler (random_search, ehvi, ...)


def paper_kept(anchors: Path, thresholds: list[float], model: str = "bert-base-cased", table: str = SIZES_TABLE) -> pd.DataFrame:
    """The paper's quality kept per (dataset, method, threshold of the prunable parameters): for each seed, the row
    of ``table`` (SIZES_TABLE or SCHEDULERS_TABLE) with the largest all-parameter threshold that holds at most that share
    of the prunable parameters, its test metric over the same seed's unpruned model (``data_unpruned_model.csv``);
    columns ``dataset, method, threshold, kept_mean, kept_std, seeds``. Empty when ``anchors`` is missing."""
    columns = ["dataset", "method", "threshold", "kept_mean", "kept_std", "seeds"]
    if not (anchors / table).is_file():
        return pd.DataFrame(columns=columns)
    rows = prunable_rows(anchors, model, table)
    unpruned = pd.read_csv(anchors / "data_unpruned_model.csv", index_col=0)
    unpruned = unpruned[unpruned["model"] == model].set_index(["dataset", "seed"])["test_error"]
    out = []
    for (dataset, method), group in rows.groupby(["dataset", "method"]):
        for threshold in thresholds:
            kept = []
            for seed, mine in group[group["threshold"] <= threshold + 1e-9].groupby("seed"):
                if (dataset, seed) in unpruned.index and unpruned[(dataset, seed)] < 1:  # (one CoLA seed's metric is 0)
                    best = mine.loc[mine["threshold"].idxmax()]
                    kept.append((1 - best["test_error"]) / (1 - unpruned[(dataset, seed)]))
            if kept:
                series = pd.Series(kept)
                out.append([dataset, method, threshold, series.mean(), series.std(), len(kept)])
    return pd.DataFrame(out, columns=columns)


def prunable_rows(anchors: Path, model: str = "bert-base-cased", table: str = SIZES_TABLE) -> pd.DataFrame:
    """``table`` (SIZES_TABLE or SCHEDULERS_TABLE) of ``model`` at its final runtime per (method, dataset), its
    ``threshold`` turned into the share of the prunable parameters (rows below the fixed part dropped)."""
    paper = pd.read_csv(anchors / table, index_col=0)
    paper = paper[paper["model"] == model]
    paper = paper[paper["runtime"] == paper.groupby(["method", "dataset"])["runtime"].transform("max")].copy()
    share = fixed_share(model)
    paper["threshold"] = (paper["threshold"] - share) / (1 - share)
    return paper[paper["threshold"] > 0]
