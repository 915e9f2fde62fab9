"""What an embedding sub-network is trained and judged by: the distillation loss against the unpruned model's
embeddings (``embedding_loss``), the embeddings of a list of sentences (``embed``), and the search's error
(``EmbeddingScorer``): 1 - Spearman correlation of the cosine similarities of scored pairs with their scores
(STS style), or, without pairs, 1 - the mean cosine similarity of the sub-network's and the teacher's embeddings of
held-out sentences."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from syne_prune.data import EVAL_BATCH_SIZE, data_loader, get_metric
from syne_prune.errors import SynePruneError
from syne_prune.precision import autocast, resolve_precision

from .data import PAIRS_METRIC, SENTENCES_METRIC, Pairs
from .pooling import EmbeddingModel, Pooling

EMBEDDING_LOSSES = ("cosine", "mse")
"""``cosine``: mean of 1 - cos(student, teacher); ``mse``: mean squared difference of the embeddings' entries."""
CONTRASTIVE_TEMPERATURE = 0.05


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """Distillation loss (a scalar) of student embeddings [batch, hidden] against the teacher's [batch, hidden]
    (detached): ``cosine`` = mean(1 - cos(s_i, t_i)), ``mse`` = mean((s - t)²) over all entries (as
    sentence-transformers' MSELoss, Reimers & Gurevych 2020, "Making Monolingual Sentence Embeddings Multilingual").
    Raises ``SynePruneError`` for another ``kind``."""
    teacher = teacher.detach()
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    if kind == "mse":
        return F.mse_loss(student, teacher)
    raise SynePruneError(f"unknown embedding loss '{kind}'; choose one of {', '.join(EMBEDDING_LOSSES)}")


def contrastive_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = CONTRASTIVE_TEMPERATURE,
                     reduction: str = "mean") -> torch.Tensor:
    """In-batch contrastive distillation (InfoNCE, van den Oord et al. 2018): each student embedding [batch, hidden]
    should be most similar (cosine / ``temperature``) to its own teacher embedding among the batch's; ``reduction``:
    ``mean`` or ``sum`` over the batch. Unlike ``embedding_loss`` it has gradients at student = teacher, which the
    Fisher importance of an embedding model needs."""
    logits = F.normalize(student, dim=-1) @ F.normalize(teacher.detach(), dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(len(student), device=student.device), reduction=reduction)


def encode_sentences(sentences: Sequence[str], tokenizer, max_length: int) -> list[dict]:
    """Sentences tokenized once (truncated, unpadded) as examples for ``syne_prune.data.data_loader``; each example's
    ``labels`` is its index (the training loop counts examples by it; no loss reads it)."""
    encoded = tokenizer(list(sentences), truncation=True, max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "labels": i} for i in range(len(sentences))]


@torch.inference_mode()
def embed(model: torch.nn.Module, pooling: Pooling, sentences: Sequence[str], tokenizer, max_length: int = 128,
          batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Embeddings [len(sentences), hidden] (float32, in the input order) of ``sentences`` by the encoder ``model`` (a
    base model, or an ``EmbeddingModel``) with ``pooling``, computed in the run's precision (``precision.resolve_precision``:
    fp32 on the CPU unless chosen otherwise). Raises ``SynePruneError`` for non-finite embeddings."""
    wrapped = model if isinstance(model, EmbeddingModel) else EmbeddingModel(model, pooling)
    wrapped.eval()
    device = next(wrapped.parameters()).device
    precision = resolve_precision(None, device)
    examples = encode_sentences(sentences, tokenizer, max_length)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # shortest first: less padding
    out = np.zeros((len(examples), getattr(wrapped.config, "hidden_size", 0)), dtype=np.float32)
    chunks = []
    for batch in data_loader([examples[i] for i in order], tokenizer, batch_size):
        inputs = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k != "labels"}
        with autocast(precision, device):
            chunks.append(wrapped(**inputs).logits.float())
    chunks = [chunk.cpu().numpy() for chunk in chunks]  # one wait for a GPU, after the last batch
    if chunks:
        out = np.empty((len(examples), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.concatenate(chunks)
    if not np.isfinite(out).all():
        raise SynePruneError("the model's embeddings hold NaN or inf; its weights are broken: train it again with a lower --lr")
    return out


def cosine_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``first`` with the same row of ``second`` ([n, hidden] each -> [n])."""
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return (first * second).sum(1) / np.maximum(norms, 1e-12)


def pairs_spearman(model: torch.nn.Module, pooling: Pooling, pairs: Pairs, tokenizer, max_length: int = 128,
                   batch_size: int = EVAL_BATCH_SIZE) -> float:
    """Spearman correlation of the cosine similarities of ``pairs``' embeddings with their scores (STS's measure)."""
    similarities = cosine_rows(embed(model, pooling, pairs.first, tokenizer, max_length, batch_size),
                               embed(model, pooling, pairs.second, tokenizer, max_length, batch_size))
    return _spearman(pairs.scores, similarities)


def _spearman(scores: np.ndarray, similarities: np.ndarray) -> float:
    """The task metric's Spearman correlation (``syne_prune.data.metrics``: similarities constant up to rounding score
    0); 0 for fewer than two pairs."""
    return get_metric("spearman").function(scores, similarities) if len(scores) >= 2 else 0.0


class EmbeddingScorer:
    """The search's error of an embedding sub-network: with ``pairs``, ``1 - pairs_spearman``; else ``1 -`` the mean
    cosine similarity of its embeddings of ``sentences`` with ``teacher_embeddings`` (the unpruned model's, computed
    once by the caller). ``metric_name`` is ``spearman`` or ``cosine``."""

    def __init__(self, pooling: Pooling, tokenizer, max_length: int, pairs: Pairs | None, sentences: Sequence[str],
                 teacher_embeddings: np.ndarray | None, batch_size: int = EVAL_BATCH_SIZE) -> None:
        if pairs is None and (not sentences or teacher_embeddings is None):
            raise SynePruneError("an embedding search needs scored pairs (--validation-file) or held-out sentences; give more sentences")
        self.pooling, self.tokenizer, self.max_length, self.batch_size = pooling, tokenizer, max_length, batch_size
        self.pairs, self.sentences, self.teacher_embeddings = pairs, list(sentences), teacher_embeddings
        self.metric_name = PAIRS_METRIC if pairs is not None else SENTENCES_METRIC

    def metric(self, model: torch.nn.Module) -> float:
        """The metric of the encoder ``model`` (higher is better)."""
        if self.pairs is not None:
            return pairs_spearman(model, self.pooling, self.pairs, self.tokenizer, self.max_length, self.batch_size)
        student = embed(model, self.pooling, self.sentences, self.tokenizer, self.max_length, self.batch_size)
        return float(cosine_rows(student, self.teacher_embeddings).mean())

    @property
    def num_examples(self) -> int:
        """How many pairs (or held-out sentences) the metric is computed on."""
        return len(self.pairs) if self.pairs is not None else len(self.sentences)

    def errors_by_level(self, model: torch.nn.Module, levels: int) -> Iterator[float]:
        """``1 - metric`` of the encoder ``model`` on the first 1, 2, ..., ``levels`` of ``levels`` equal chunks of the
        examples (in order), each chunk embedded once: the errors a multi-fidelity search reports per level."""
        seen: list[np.ndarray] = []
        for chunk in np.array_split(np.arange(self.num_examples), levels):
            if self.pairs is not None:
                first = embed(model, self.pooling, [self.pairs.first[i] for i in chunk], self.tokenizer, self.max_length, self.batch_size)
                second = embed(model, self.pooling, [self.pairs.second[i] for i in chunk], self.tokenizer, self.max_length, self.batch_size)
                seen.append(cosine_rows(first, second))
                yield 1.0 - _spearman(self.pairs.scores[: sum(map(len, seen))], np.concatenate(seen))
            else:
                student = embed(model, self.pooling, [self.sentences[i] for i in chunk], self.tokenizer, self.max_length, self.batch_size)
                seen.append(cosine_rows(student, self.teacher_embeddings[chunk]))
                yield 1.0 - float(np.concatenate(seen).mean())

    def scores(self, model: torch.nn.Module) -> dict[str, float]:
        """``{metric_name: metric, "error": 1 - metric}`` of the encoder ``model``."""
        value = self.metric(model)
        return {self.metric_name: value, "error": 1.0 - value}
