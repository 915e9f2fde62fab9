"""A tiny random BERT (2 layers, 4 heads, hidden size 32) with a WordPiece tokenizer, and a super-network trained from
it on the generated ``synthetic_sentiment`` task: what the extending examples run on, offline, in seconds.

Not part of syne-prune: the examples import it to have something small to prune."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizerFast

from syne_prune.data import synthetic_sentiment
from syne_prune.supernet import TrainingConfig, train_supernet


def tiny_model_dir(path: Path, classifier: bool = False) -> Path:
    """Save a tiny random BERT and a tokenizer over the demo task's words into ``path``: a base model, or with
    ``classifier`` a two-class sequence classifier (what ``prune`` takes as the fine-tuned model)."""
    train, test = synthetic_sentiment(seed=0)
    words = Counter(w for text in train.texts[0] + test.texts[0] for w in re.findall(r"\w+|[^\w\s]", text.lower()))
    chars = sorted({c for w in words for c in w})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *sorted(w for w in words if len(w) > 1)]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(path / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=64, num_labels=2)
    (BertForSequenceClassification(config) if classifier else BertModel(config)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def tiny_supernet(root: Path) -> Path:
    """A super-network of the tiny BERT (``small`` space, ``sandwich``, 3 epochs on 400 examples) in ``root/supernet``."""
    model = tiny_model_dir(root / "model")
    config = TrainingConfig(model=str(model), task="synthetic_sentiment", output=str(root / "supernet"), teacher=None,
                            importance="none", strategy="sandwich", epochs=3, batch_size=16, lr=3e-3, max_length=32,
                            max_train_examples=400, max_eval_examples=80)
    train_supernet(config, progress=False)
    return root / "supernet"
