"""What the embedding tests share: a tiny BERT encoder saved as a sentence-transformers directory (mean pooling,
normalized) with a word-level vocabulary, sentences to distil on and scored pairs, all written in the test."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizerFast

WORDS = ["the", "a", "film", "movie", "plot", "cast", "was", "is", "good", "bad", "great", "dull", "not", "very", "story", "music",
         "cat", "dog", "sat", "ran", "on", "mat", "park", "in", "and", "slow", "fast", "red", "blue", "car"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]


def tiny_encoder(seed: int = 0) -> BertModel:
    """A tiny random BERT encoder: 2 layers, 4 heads (head size 8), hidden 32, FFN 37."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                        max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertModel(config).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.normal_(1.0, 0.3)
                module.bias.normal_(0.0, 0.3)
    return model


def write_model(path: Path, sentence_transformers: bool = True, mode: str = "mean") -> Path:
    """Save the tiny encoder and its tokenizer to ``path``, with sentence-transformers files (``mode`` pooling,
    normalized) unless ``sentence_transformers`` is False."""
    tiny_encoder().save_pretrained(path)
    (path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    BertTokenizerFast(vocab=str(path / "vocab.txt")).save_pretrained(path)
    if sentence_transformers:
        (path / "modules.json").write_text(json.dumps([
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]))
        (path / "1_Pooling").mkdir()
        (path / "1_Pooling" / "config.json").write_text(json.dumps({
            "word_embedding_dimension": 32, "pooling_mode_cls_token": mode == "cls", "pooling_mode_mean_tokens": mode == "mean",
            "pooling_mode_max_tokens": mode == "max", "pooling_mode_mean_sqrt_len_tokens": False}))
        (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32, "do_lower_case": False}))
    return path


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.RandomState(seed)
    return [" ".join(rng.choice(WORDS, size=rng.randint(3, 9))) for _ in range(count)]


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("st") / "model")


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("plain") / "model", sentence_transformers=False)


@pytest.fixture(scope="module")
def embedding_data(tmp_path_factory) -> dict[str, Path]:
    """``sentences.csv`` (column text, 40 rows), ``pairs.csv`` (sentence1, sentence2, score; 24 rows: a sentence with
    itself scores 5, with a shuffled copy 3, with another sentence 0) and ``queries.csv`` / ``corpus.csv``."""
    root = tmp_path_factory.mktemp("embedding_data")
    pd.DataFrame({"text": sentences(40)}).to_csv(root / "sentences.csv", index=False)
    base, other = sentences(8, seed=1), sentences(8, seed=2)
    rng = np.random.RandomState(3)
    shuffled = [" ".join(rng.permutation(s.split())) for s in base]
    pairs = pd.DataFrame({"sentence1": base * 3, "sentence2": base + shuffled + other, "score": [5.0] * 8 + [3.0] * 8 + [0.0] * 8})
    pairs.to_csv(root / "pairs.csv", index=False)
    corpus = sentences(12, seed=4)
    pd.DataFrame({"id": [f"d{i}" for i in range(12)], "text": corpus}).to_csv(root / "corpus.csv", index=False)
    queries = [" ".join(s.split()[:3]) for s in corpus[:6]]
    pd.DataFrame({"query": queries, "relevant": corpus[:6]}).to_csv(root / "queries.csv", index=False)
    return {"sentences": root / "sentences.csv", "pairs": root / "pairs.csv", "corpus": root / "corpus.csv", "queries": root / "queries.csv"}
