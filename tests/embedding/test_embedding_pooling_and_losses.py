"""Pooling read from sentence-transformers files and computed as sentence-transformers computes it; the distillation
losses; the strategies with an embedding loss."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from embedding_fixtures import sentences, write_model
from transformers import AutoTokenizer

from syne_prune.embedding import Pooling, contrastive_loss, embed, embedding_loss, load_encoder, read_pooling, resolve_pooling
from syne_prune.errors import SynePruneError


def test_pooling_is_read_from_the_sentence_transformers_files(st_dir, plain_dir):
    assert read_pooling(st_dir) == Pooling("mean", True)
    assert read_pooling(plain_dir) is None
    assert resolve_pooling(plain_dir, "cls") == Pooling("cls", True)
    with pytest.raises(SynePruneError, match="no sentence-transformers pooling files.*pass --pooling mean\\|cls\\|max"):
        resolve_pooling(plain_dir)


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_embeddings_equal_sentence_transformers(tmp_path, mode):
    from sentence_transformers import SentenceTransformer

    directory = write_model(tmp_path / "model", mode=mode)
    texts = sentences(7, seed=5)
    want = SentenceTransformer(str(directory), device="cpu").encode(texts, convert_to_numpy=True)
    got = embed(load_encoder(str(directory)), read_pooling(directory), texts, AutoTokenizer.from_pretrained(directory), max_length=32, batch_size=3)
    assert np.abs(got - want).max() <= 1e-5
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_losses():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 8), torch.randn(5, 8)
    cosine = torch.nn.functional.cosine_similarity(student, teacher, dim=-1)
    assert torch.isclose(embedding_loss(student, teacher, "cosine"), (1 - cosine).mean())
    assert torch.isclose(embedding_loss(student, teacher, "mse"), ((student - teacher) ** 2).mean())
    assert float(embedding_loss(teacher, teacher, "cosine")) == pytest.approx(0.0, abs=1e-6)
    # the contrastive loss is lowest when each student matches its own teacher row
    assert float(contrastive_loss(teacher, teacher)) < float(contrastive_loss(teacher.roll(1, 0), teacher))
    with pytest.raises(SynePruneError, match="unknown embedding loss 'l1'"):
        embedding_loss(student, teacher, "l1")
