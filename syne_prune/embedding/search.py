"""What a search of an embedding super-network scores on: its held-out sentences and the teacher's embeddings of them
(``TEACHER_EMBEDDINGS_FILE``, written with the checkpoint, so no trial loads the teacher), or its scored pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from syne_prune.data import EVAL_BATCH_SIZE, TaskSpec, relocate

from .data import EmbeddingData, load_embedding_data
from .objectives import EmbeddingScorer
from .pooling import Pooling

TEACHER_EMBEDDINGS_FILE = "teacher_embeddings.npy"
"""float32 [held-out sentences, hidden]: the teacher's embeddings of a super-network's held-out sentences."""


def embedding_search_data(metadata: dict[str, Any], max_eval_examples: int | None = None, task_files: str | None = None) -> EmbeddingData:
    """The held-out sentences and scored pairs of the super-network whose ``supernet.json`` is ``metadata`` (its
    seed and validation fraction), at most ``max_eval_examples`` of each; its data files read from the folder
    ``task_files`` when given (where ``syne_prune.data.spec_files`` copied them, e.g. a SageMaker job's channel), else
    from where they were when it was trained. Raises ``SynePruneError`` when a data file changed since training."""
    hp = metadata["hyperparameters"]
    spec = relocate(metadata["task"], task_files) if task_files else TaskSpec.from_json(metadata["task"])
    return load_embedding_data(spec, hp["validation_fraction"], hp["seed"], 1, max_eval_examples)


def search_scorer(directory: str | Path, metadata: dict[str, Any], tokenizer, max_eval_examples: int | None = None,
                  batch_size: int = EVAL_BATCH_SIZE, task_files: str | None = None) -> EmbeddingScorer:
    """The ``EmbeddingScorer`` of the super-network in ``directory`` (``metadata``: its ``supernet.json``; ``task_files``:
    as ``embedding_search_data``)."""
    data = embedding_search_data(metadata, max_eval_examples, task_files)
    teacher = None
    sentences = data.validation
    if data.pairs is None:
        teacher = np.load(Path(directory) / TEACHER_EMBEDDINGS_FILE)
        sentences = sentences[: len(teacher)]
        teacher = teacher[: len(sentences)]
    return EmbeddingScorer(Pooling.from_json(metadata["pooling"]), tokenizer, metadata["hyperparameters"]["max_length"], data.pairs,
                           sentences, teacher, batch_size)
