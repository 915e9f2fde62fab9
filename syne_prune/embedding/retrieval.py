"""Retrieval quality of an embedding model on the user's own data: every query of a (query, relevant text) pairs file
is embedded and its corpus texts ranked by cosine similarity; reported are recall@k (the share of queries whose
relevant text is among the first k) and nDCG@10 (one relevant text per query: 1 / log2(1 + rank) when its rank is at
most 10, else 0; Järvelin & Kekäläinen 2002), for the unpruned model or any export."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from syne_prune.devices import default_device
from syne_prune.errors import SynePruneError
from syne_prune.models import load_tokenizer, resolve_model

from .data import check_texts, read_frame
from .objectives import embed
from .pooling import resolve_pooling
from .train import load_encoder

DEFAULT_KS = (1, 5, 10)


def retrieval_metrics(query_embeddings: np.ndarray, corpus_embeddings: np.ndarray, relevant: Sequence[int],
                      ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """``{"recall@k": ..., "ndcg@10": ..., "mrr": ...}`` of queries [n, hidden] against a corpus [m, hidden] whose
    ``relevant[i]`` row is query i's one relevant text, ranked by cosine similarity (ties: the lower row first)."""
    queries = query_embeddings / np.maximum(np.linalg.norm(query_embeddings, axis=1, keepdims=True), 1e-12)
    corpus = corpus_embeddings / np.maximum(np.linalg.norm(corpus_embeddings, axis=1, keepdims=True), 1e-12)
    scores = queries @ corpus.T
    relevant = np.asarray(relevant)
    target = scores[np.arange(len(relevant)), relevant][:, None]
    ahead = (scores > target).sum(1) + ((scores == target) & (np.arange(scores.shape[1]) < relevant[:, None])).sum(1)
    ranks = ahead + 1  # 1 = first
    result = {f"recall@{k}": float((ranks <= k).mean()) for k in ks}
    result["ndcg@10"] = float(np.where(ranks <= 10, 1.0 / np.log2(1.0 + ranks), 0.0).mean())
    result["mrr"] = float((1.0 / ranks).mean())
    return result


def read_retrieval_files(queries_file: str | Path, corpus_file: str | Path | None = None, query_column: str = "query",
                         relevant_column: str = "relevant", corpus_column: str = "text") -> tuple[list[str], list[str], list[int]]:
    """(queries, corpus, relevant row of each query): the corpus is the ``corpus_column`` of ``corpus_file`` plus every
    relevant text it lacks. Raises ``SynePruneError`` for missing columns or empty texts."""
    frame = read_frame(queries_file)
    queries = check_texts(frame, query_column, Path(queries_file))
    relevant = check_texts(frame, relevant_column, Path(queries_file))
    corpus = check_texts(read_frame(corpus_file), corpus_column, Path(corpus_file)) if corpus_file is not None else []
    index: dict[str, int] = {}
    for text in [*corpus, *relevant]:
        index.setdefault(text, len(index))
    return queries, list(index), [index[text] for text in relevant]


def evaluate_retrieval(model: str, queries_file: str | Path, corpus_file: str | Path | None = None, pooling: str | None = None,
                       ks: Sequence[int] = DEFAULT_KS, max_length: int = 128, batch_size: int = 32, query_column: str = "query",
                       relevant_column: str = "relevant", corpus_column: str = "text") -> dict[str, Any]:
    """Recall@k, nDCG@10 and MRR (``retrieval_metrics``) of the embedding model ``model`` (a sentence-transformers
    directory, an export of syne-prune, or a model with ``pooling``) on the (query, relevant text) pairs of
    ``queries_file`` against the corpus of ``corpus_file``; also ``num_queries`` and ``corpus_size``. The model embeds
    on the run's device in the run's precision (``devices.default_device``, ``precision.resolve_precision``). Raises
    ``SynePruneError`` for a model without pooling, unreadable files or bad k."""
    if not ks or any(int(k) <= 0 for k in ks):
        raise SynePruneError(f"--k must be positive integers, got {list(ks)}")
    queries, corpus, relevant = read_retrieval_files(queries_file, corpus_file, query_column, relevant_column, corpus_column)
    source = resolve_model(model)
    chosen = resolve_pooling(source, pooling)
    tokenizer = load_tokenizer(source, f"model '{model}'")
    encoder = load_encoder(source).to(default_device())
    metrics = retrieval_metrics(embed(encoder, chosen, queries, tokenizer, max_length, batch_size),
                                embed(encoder, chosen, corpus, tokenizer, max_length, batch_size), relevant, [int(k) for k in ks])
    return {**metrics, "num_queries": len(queries), "corpus_size": len(corpus), "model": model}
