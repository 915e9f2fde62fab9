"""The search's embedding objectives: Spearman of cosine similarities on scored pairs, mean cosine to the teacher on
held-out sentences, and the per-fidelity-level errors on growing prefixes of the examples."""
from __future__ import annotations

import numpy as np
import pytest
from embedding_fixtures import sentences
from scipy.stats import spearmanr
from transformers import AutoTokenizer

from syne_prune.embedding import EmbeddingScorer, Pairs, Pooling, embed, load_encoder, read_pairs


def test_pairs_error_is_one_minus_spearman_of_cosines(st_dir, embedding_data):
    encoder, tokenizer, pooling = load_encoder(str(st_dir)), AutoTokenizer.from_pretrained(st_dir), Pooling()
    every = read_pairs(embedding_data["pairs"])
    order = 8 + np.random.RandomState(0).permutation(16)  # not the sentences paired with themselves (cosine 1: ties); scores mixed
    pairs = Pairs([every.first[i] for i in order], [every.second[i] for i in order], every.scores[order])
    first, second = (embed(encoder, pooling, texts, tokenizer, 32) for texts in (pairs.first, pairs.second))
    cosines = (first * second).sum(1)  # unit vectors
    scorer = EmbeddingScorer(pooling, tokenizer, 32, pairs, [], None)
    assert scorer.scores(encoder)["error"] == pytest.approx(1 - spearmanr(pairs.scores, cosines).statistic, abs=1e-6)
    errors = list(scorer.errors_by_level(encoder, 3))
    assert errors[-1] == pytest.approx(scorer.scores(encoder)["error"], abs=1e-6)
    assert len(set(pairs.scores[:6])) == 2
    assert errors[0] == pytest.approx(1 - spearmanr(pairs.scores[:6], cosines[:6]).statistic, abs=1e-6)


def test_sentences_error_is_one_minus_mean_cosine_to_the_teacher(st_dir):
    encoder, tokenizer, pooling = load_encoder(str(st_dir)), AutoTokenizer.from_pretrained(st_dir), Pooling()
    texts = sentences(10, seed=7)
    teacher = embed(encoder, pooling, texts, tokenizer, 32)
    assert EmbeddingScorer(pooling, tokenizer, 32, None, texts, teacher).scores(encoder)["error"] == pytest.approx(0.0, abs=1e-6)
    rotated = np.roll(teacher, 1, axis=0)  # every sentence compared with another's embedding
    scorer = EmbeddingScorer(pooling, tokenizer, 32, None, texts, rotated)
    assert scorer.scores(encoder)["error"] == pytest.approx(1 - float((teacher * rotated).sum(1).mean()), abs=1e-6)
    assert list(scorer.errors_by_level(encoder, 2))[0] == pytest.approx(1 - float((teacher[:5] * rotated[:5]).sum(1).mean()), abs=1e-6)
