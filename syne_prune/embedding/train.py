"""Train an embedding super-network: every sub-network learns to reproduce the unpruned model's pooled, normalized
sentence embeddings (``embedding_loss``, cosine or MSE) on the user's own unlabeled sentences, with the super-network
strategies (``syne_prune.supernet.STRATEGIES``), importance ordering and ``--resume`` of ``train-supernet``.

The teacher is a frozen copy of the unpruned model (or ``--teacher DIR``, another encoder of the same shape and
vocabulary), never updated. The checkpoint is a super-network directory (``supernet.json``, ``syne_prune.artifacts``)
whose model is the encoder alone (e.g. ``BertModel``), with the sentence-transformers files of its pooling, so
``SentenceTransformer(OUTPUT)`` loads the unpruned network too."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModel, PretrainedConfig

from syne_prune.artifacts import SUPERNET_FILE, SupernetDir
from syne_prune.data import TaskSpec, data_loader
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import default_device
from syne_prune.files import atomic_write_text, output_lock, writing
from syne_prune.importance import ORDERED_ATTRIBUTE, ordered_by
from syne_prune.models import check_model_files, get_family, load_model_config, load_tokenizer, resolve_model
from syne_prune.numerics import require_finite_weights
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet import AUTO_TEACHER, TrainingConfig, get_strategy
from syne_prune.surgery import InPlaceMask, extract_subnetwork
from syne_prune.training import (
    RESUME_DIR,
    LoopSettings,
    TrainingLoop,
    prepare_output,
    save_training_state,
    seed_everything,
    steps_per_epoch,
    write_settings,
)
from syne_prune.versions import software_versions

from .data import EMBEDDING, is_embedding_task, load_embedding_data, resolve_embedding_task
from .importance import order_embedding_model
from .objectives import EMBEDDING_LOSSES, EmbeddingScorer, embed, embedding_loss, encode_sentences
from .pooling import EmbeddingModel, Pooling, read_pooling, resolve_pooling, write_sentence_transformers_files
from .search import TEACHER_EMBEDDINGS_FILE

IMPORTANCE_FILE = ".importance.json"


@dataclass
class EmbeddingTrainingConfig(TrainingConfig):
    """``TrainingConfig`` for an embedding task (``task``: a ``TaskSpec`` with ``task_type`` ``embedding``), plus
    ``pooling`` (``mean``/``cls``/``max``; None: read from the model's sentence-transformers files) and
    ``embedding_loss`` (``cosine`` or ``mse``). ``teacher``: ``auto``/``none``/None distil from a frozen copy of
    ``model``; a directory, from that encoder."""

    pooling: str | None = None
    embedding_loss: str = "cosine"

    def check(self) -> None:
        """``TrainingConfig.check`` plus the embedding settings; one-line ``SynePruneError``s."""
        if not isinstance(self.task, (TaskSpec, dict)) or not is_embedding_task(self.task):
            raise SynePruneError("an embedding super-network needs your sentences: --task-type embedding --train-file FILE")
        super().check()
        if self.embedding_loss not in EMBEDDING_LOSSES:
            raise SynePruneError(f"unknown embedding loss '{self.embedding_loss}'; choose one of {', '.join(EMBEDDING_LOSSES)}")
        if self.pooling is not None:
            Pooling(self.pooling)


def model_pooling(model: str, model_config: PretrainedConfig, pooling: str | None) -> Pooling:
    """The pooling of ``model`` for an embedding task (``resolve_pooling``); a task model (a classifier) without
    pooling files and without ``pooling`` gets its own one-line ``SynePruneError``."""
    source = resolve_model(model)
    if pooling is None and Path(source).is_dir() and read_pooling(source) is None and any(
            a.endswith(("ForSequenceClassification", "ForMultipleChoice", "ForTokenClassification"))
            for a in getattr(model_config, "architectures", None) or []):
        raise SynePruneError(f"model '{model}' is a task model ({model_config.architectures[0]}), not an embedding model; give a "
                             "sentence-transformers model, or pass --pooling mean|cls|max to embed with its encoder")
    return resolve_pooling(source, pooling, True)


def load_encoder(source: str) -> torch.nn.Module:
    """The encoder (base model, float32, eval mode) of the model ``source``; a task model's head is dropped. A family's
    pooler layer (BERT's) stays, unused by the embedding, so the encoder is the family's stock base model. A hub id that a
    package carries (``syne_prune.models.resolve_model``) loads from that package."""
    source = resolve_model(source)
    check_model_files(source, f"model '{source}'", "use a checkpoint with finite weights")
    encoder = AutoModel.from_pretrained(source, dtype=torch.float32).eval()
    require_finite_weights(encoder, f"model '{source}'", "use a checkpoint with finite weights")
    return encoder


class FrozenTeacher:
    """A callable batch -> embeddings [batch, hidden] of a frozen encoder (no gradients), as the strategies' teacher."""

    def __init__(self, encoder: torch.nn.Module, pooling: Pooling, source: str) -> None:
        self.model = EmbeddingModel(encoder.eval().requires_grad_(False), pooling)
        self.source = source

    def to(self, device) -> "FrozenTeacher":
        self.model.to(device)
        return self

    @torch.no_grad()
    def __call__(self, batch) -> torch.Tensor:
        return self.model(**{k: v for k, v in batch.items() if k != "labels"}).logits


def train_embedding_supernet(config: EmbeddingTrainingConfig, resume: bool = False, overwrite: bool = False,
                             progress: bool = True) -> dict[str, Any]:
    """Train an embedding super-network into ``config.output`` and return its ``supernet.json`` record.

    Raises ``SynePruneError`` before the output is created or touched for bad settings, data (an empty text column, a
    pairs file without scores), a model without pooling (no sentence-transformers files and no ``pooling``), a task
    model given without ``pooling``, or an output that exists without ``resume``/``overwrite``."""
    config.check()
    model_config = load_model_config(config.model)
    space = get_search_space(config.search_space, get_family(model_config).shape(model_config))
    pooling = model_pooling(config.model, model_config, config.pooling)
    spec = resolve_embedding_task(config.task if isinstance(config.task, TaskSpec) else TaskSpec.from_json(config.task))
    data = load_embedding_data(spec, config.validation_fraction, config.seed, config.max_train_examples, config.max_eval_examples)
    source = resolve_model(config.model)
    tokenizer = load_tokenizer(source, f"model '{config.model}'")
    teacher_source = source if config.teacher in (None, "none", AUTO_TEACHER) else config.teacher
    seed_everything(config.seed)
    model = load_encoder(source)
    teacher = FrozenTeacher(load_encoder(teacher_source), pooling, teacher_source)
    if teacher.model.encoder.config.hidden_size != model.config.hidden_size:
        raise SynePruneError(f"--teacher '{config.teacher}' embeds in {teacher.model.encoder.config.hidden_size} dimensions, the model in "
                             f"{model.config.hidden_size}; give a teacher of the model's hidden size")
    prepare_output(config.output, config.settings(), resume, overwrite, SUPERNET_FILE, check_only=True)
    with output_lock(config.output, "super-network training"):
        output = prepare_output(config.output, config.settings(), resume, overwrite, SUPERNET_FILE)
        if resume and (output / SUPERNET_FILE).is_file() and not (output / RESUME_DIR).exists():
            return SupernetDir(output).read()
        return _train(config, output, (model, teacher, tokenizer, pooling), (space, spec, data, source), resume, progress)


def _train(config: EmbeddingTrainingConfig, output: Path, parts: tuple, run: tuple, resume: bool, progress: bool) -> dict[str, Any]:
    model, teacher, tokenizer, pooling = parts
    space, spec, data, source = run
    device = default_device()
    model.to(device)
    teacher.to(device)
    state = output / RESUME_DIR / "state.pt"
    if resume and state.is_file() and (output / IMPORTANCE_FILE).is_file():
        setattr(model.config, ORDERED_ATTRIBUTE, json.loads((output / IMPORTANCE_FILE).read_text())["method"])
    examples = encode_sentences(data.train, tokenizer, config.max_length)
    importance = _importance(config, model, teacher, examples, tokenizer, pooling, output / IMPORTANCE_FILE)
    wrapped = EmbeddingModel(model, pooling)
    masker = InPlaceMask(model)
    strategy = get_strategy(config.strategy)(
        space, masker, np.random.RandomState(config.seed), False, steps_per_epoch(len(examples), config.batch_size) * config.epochs,
        temperature=config.temperature, num_random_subnets=config.num_random_subnets, teacher=teacher,
        loss=lambda student, target: embedding_loss(student, target, config.embedding_loss))
    loop = TrainingLoop(wrapped, examples, tokenizer, strategy,
                        LoopSettings(config.epochs, config.lr, config.batch_size, config.seed, config.warmup_ratio,
                                     description=f"{config.strategy}, embedding", progress=progress),
                        random_state=strategy.random_state, device=device)
    if resume:
        loop.resume(state)

    def save(record: dict[str, Any]) -> None:
        write_settings(output, config.settings())
        save_training_state(state, wrapped, loop.optimizer, loop.schedule, loop.epochs_done, loop.history, strategy.random_state)

    loop.run(save)
    masker.remove()
    return _write_checkpoint(config, output, (model, teacher, tokenizer, pooling), (space, spec, data, source), loop.history, importance)


def _importance(config, model, teacher, examples, tokenizer, pooling, record_path: Path) -> dict[str, Any]:
    if config.importance == "none" or config.strategy == "standard":
        return {"method": "none"}
    if record_path.is_file() and ordered_by(model):
        return json.loads(record_path.read_text())
    batches = list(data_loader(examples[: config.importance_examples], tokenizer, config.batch_size))
    record = order_embedding_model(model, teacher, pooling, batches, config.importance)
    atomic_write_text(record_path, json.dumps(record))
    return record


def _write_checkpoint(config, output: Path, parts: tuple, run: tuple, history: list[dict], importance) -> dict[str, Any]:
    model, teacher, tokenizer, pooling = parts
    space, spec, data, source = run
    model.eval()
    teacher_embeddings = embed(teacher.model, pooling, data.validation, tokenizer, config.max_length)
    scorer = EmbeddingScorer(pooling, tokenizer, config.max_length, data.pairs, data.validation, teacher_embeddings, config.eval_batch_size)
    metrics = {}
    for name, subnet in (("largest", space.largest()), ("smallest", space.smallest())):
        sub = extract_subnetwork(model, space.to_mask(subnet))
        metrics[name] = {"config": subnet, "validation": scorer.scores(sub), "test": None}
    teacher_scores = scorer.scores(teacher.model.encoder)
    require_finite_weights(model, "the trained super-network")
    with writing(output):
        model.save_pretrained(output)
        tokenizer.save_pretrained(output)
        write_sentence_transformers_files(output, pooling, model.config.hidden_size, config.max_length)
        np.save(output / TEACHER_EMBEDDINGS_FILE, teacher_embeddings)
    metadata = SupernetDir(output).write({
        "model": config.model, "initialised_from": str(source), "model_type": model.config.model_type,
        "task": spec.to_json(), "task_type": EMBEDDING, "metric": scorer.metric_name, "pooling": pooling.to_json(),
        "search_space": config.search_space, "strategy": config.strategy,
        "teacher": {"source": "frozen unpruned model" if teacher.source == str(source) else "directory", "path": teacher.source,
                    "validation": teacher_scores, "test": None},
        "seed": config.seed, "hyperparameters": config.settings(), "num_train_examples": len(data.train),
        "num_validation_examples": len(data.pairs) if data.pairs is not None else len(data.validation), "num_test_examples": 0,
        "history": history, "train_time_s": sum(h["epoch_time_s"] for h in history), "metrics": metrics,
        "importance": importance, "versions": software_versions(),
    })
    shutil.rmtree(output / RESUME_DIR, ignore_errors=True)
    (output / IMPORTANCE_FILE).unlink(missing_ok=True)
    return metadata
