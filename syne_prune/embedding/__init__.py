"""Smaller sentence-embedding models: an embedding task (plain sentences, optionally scored pairs), the pooling of a
sentence-transformers model, the distillation of the unpruned model's embeddings into every sub-network of a
super-network, the search's embedding objectives, the export that ``SentenceTransformer`` loads, and retrieval
evaluation (recall@k, nDCG@10). See docs/embedding-models.md."""
from __future__ import annotations

from .data import EMBEDDING, EmbeddingData, Pairs, is_embedding_task, load_embedding_data, read_pairs, read_sentences, resolve_embedding_task
from .export import ONNX_FILE, embedding_export_record, export_embedding_subnetwork
from .importance import contrastive_fisher_scores, order_embedding_model
from .objectives import EMBEDDING_LOSSES, EmbeddingScorer, contrastive_loss, embed, embedding_loss, encode_sentences, pairs_spearman
from .pooling import POOLING_MODES, EmbeddingModel, Pooling, pool, read_pooling, resolve_pooling, write_sentence_transformers_files
from .recovery import EmbeddingDistillationStep, is_embedding_export, recover_embedding
from .retrieval import DEFAULT_KS, evaluate_retrieval, read_retrieval_files, retrieval_metrics
from .search import TEACHER_EMBEDDINGS_FILE, embedding_search_data, search_scorer
from .train import EmbeddingTrainingConfig, FrozenTeacher, load_encoder, model_pooling, train_embedding_supernet

__all__ = ["DEFAULT_KS", "EMBEDDING", "EMBEDDING_LOSSES", "EmbeddingData", "EmbeddingDistillationStep", "EmbeddingModel", "EmbeddingScorer",
           "EmbeddingTrainingConfig", "FrozenTeacher", "ONNX_FILE", "POOLING_MODES", "Pairs", "Pooling", "TEACHER_EMBEDDINGS_FILE",
           "contrastive_fisher_scores", "contrastive_loss", "embed", "embedding_export_record", "embedding_loss", "embedding_search_data",
           "encode_sentences", "evaluate_retrieval", "export_embedding_subnetwork", "is_embedding_export", "is_embedding_task",
           "load_embedding_data", "load_encoder", "model_pooling", "order_embedding_model", "pairs_spearman", "pool", "read_pairs", "read_pooling",
           "read_retrieval_files", "read_sentences", "recover_embedding", "resolve_embedding_task", "resolve_pooling", "retrieval_metrics",
           "search_scorer", "train_embedding_supernet", "write_sentence_transformers_files"]
