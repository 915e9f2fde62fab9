"""Retrieval evaluation: recall@k, nDCG@10 and MRR computed from ranks, and the command on a model's own texts."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import fails

from syne_prune.cli import main
from syne_prune.embedding import evaluate_retrieval, retrieval_metrics


def test_metrics_from_known_ranks():
    corpus = np.eye(4)
    # query 0 is corpus row 0 exactly (rank 1); query 1 is nearest to row 3, then row 1 (rank 2); query 2 points away from row 2
    queries = np.array([[1.0, 0, 0, 0], [0, 0.6, 0, 0.8], [1.0, 1.0, -1.0, 1.0]])
    result = retrieval_metrics(queries, corpus, [0, 1, 2], ks=(1, 2))
    ranks = np.array([1, 2, 4])
    assert result["recall@1"] == pytest.approx(1 / 3) and result["recall@2"] == pytest.approx(2 / 3)
    assert result["ndcg@10"] == pytest.approx(np.mean(1 / np.log2(1 + ranks)))
    assert result["mrr"] == pytest.approx(np.mean(1 / ranks))


def test_identical_queries_are_found_first(st_dir, embedding_data, tmp_path):
    import pandas as pd

    corpus = pd.read_csv(embedding_data["corpus"])["text"].tolist()
    pd.DataFrame({"query": corpus[:5], "relevant": corpus[:5]}).to_csv(tmp_path / "q.csv", index=False)
    result = evaluate_retrieval(str(st_dir), tmp_path / "q.csv", embedding_data["corpus"])
    assert result["recall@1"] == 1.0 and result["ndcg@10"] == pytest.approx(1.0) and result["corpus_size"] == 12


def test_the_command(st_dir, embedding_data, capsys):
    assert main(["evaluate-retrieval", "--model", str(st_dir), "--queries", str(embedding_data["queries"]), "--corpus",
                 str(embedding_data["corpus"]), "--k", "1,3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["num_queries"] == 6 and 0 <= result["recall@1"] <= result["recall@3"] <= 1
    fails(capsys, ["evaluate-retrieval", "--model", str(st_dir), "--queries", str(embedding_data["queries"]), "--query-column", "q"],
          "has no column 'q'")
