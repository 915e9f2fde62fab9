"""``quickstart --task-type embedding`` end to end on a tiny model: generated sentences, super-network, search,
export, recovery; the recovered model loads with SentenceTransformer."""
from __future__ import annotations

import pytest
import torch

from syne_prune.quickstart import QuickstartConfig, embedding_quickstart


@pytest.mark.slow
def test_embedding_quickstart_on_a_tiny_model(st_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(1)
    config = QuickstartConfig(output=str(tmp_path / "quick"), model=str(st_dir), epochs=1, max_trials=4, n_workers=1, recover_epochs=1,
                              max_params=0.9, max_train_examples=40)
    result = embedding_quickstart(config, progress=False)
    assert result["metric"] == "cosine" and result["chosen"]["params"] <= 0.9
    assert result["after_recovery"] >= result["before_recovery"]  # keep best: never below the export as it came
    assert len(open(tmp_path / "quick" / "data" / "sentences.csv").read().splitlines()) == 501
    embeddings = SentenceTransformer(str(result["model"]), device="cpu", trust_remote_code=True).encode(["the film was good"])
    assert embeddings.shape == (1, 32)
