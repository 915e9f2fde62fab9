"""Recovery of an embedding export: a few epochs of distilling the teacher's embeddings (the unpruned model's) into
the exported, physically smaller encoder, on the same sentences the super-network was trained on (the export
records its task, split seed and validation fraction). The written weights are, with ``keep="best"``, those with the
lowest validation error among the export as it came and every epoch's end (``syne_prune.recovery.BestOnValidation``);
the result is a new embedding export whose ``syne_prune.json`` adds ``recovery`` (teacher, settings, history, the
validation metric before and after), in the format ``syne-prune recover`` prints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from syne_prune.artifacts import EXPORT_FILE, ExportDir
from syne_prune.data import TaskSpec
from syne_prune.errors import SynePruneError
from syne_prune.export import export_onnx, save_export
from syne_prune.models import load_tokenizer, resolve_model
from syne_prune.precision import backward
from syne_prune.recovery import KEEP_POLICIES, BestOnValidation
from syne_prune.training import RESUME_DIR, LoopSettings, TrainingLoop, prepare_output, seed_everything
from syne_prune.versions import software_versions

from .data import load_embedding_data
from .export import ONNX_FILE
from .objectives import EmbeddingScorer, embed, embedding_loss, encode_sentences
from .pooling import EmbeddingModel, Pooling, write_sentence_transformers_files
from .train import FrozenTeacher, load_encoder


def is_embedding_export(model_dir: str | Path) -> bool:
    """Whether ``model_dir`` is an embedding export of syne-prune (its ``syne_prune.json`` records ``embedding_task``)."""
    directory = ExportDir(model_dir)
    return directory.is_export() and "embedding_task" in directory.read()


class EmbeddingDistillationStep:
    """One recovery step, ``(student, batch, step) -> loss``: ``embedding_loss`` of the student's embeddings against the
    teacher's (no gradient), and its backward pass."""

    def __init__(self, teacher: FrozenTeacher, kind: str) -> None:
        self.teacher, self.kind = teacher, kind

    def __call__(self, model: torch.nn.Module, batch: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        target = self.teacher(batch)
        loss = embedding_loss(model(**{k: v for k, v in batch.items() if k != "labels"}).logits, target, self.kind)
        backward(loss)
        return loss.detach()


def recover_embedding(model_dir: str | Path, teacher_dir: str | Path, epochs: int, output: str | Path, *, lr: float = 5e-5,
                      batch_size: int = 32, warmup_ratio: float = 0.0, seed: int = 0, max_train_examples: int | None = None,
                      max_eval_examples: int | None = None, eval_batch_size: int = 32, keep: str = "best", onnx: bool = False,
                      overwrite: bool = False, progress: bool = True, record_source: bool = True) -> dict[str, Any]:
    """Distil ``teacher_dir``'s embeddings into the embedding export ``model_dir`` for ``epochs`` epochs on its recorded
    sentences and write a new embedding export to ``output``; returns its ``syne_prune.json`` record. Raises
    ``SynePruneError`` (before ``output`` is touched) for an export that is not an embedding export, a teacher of
    another hidden size, bad settings, or an existing ``output`` without ``overwrite``."""
    if not isinstance(epochs, int) or epochs <= 0:
        raise SynePruneError(f"--epochs must be a positive integer, got {epochs}")
    if keep not in KEEP_POLICIES:
        raise SynePruneError(f"--keep must be one of {', '.join(KEEP_POLICIES)}, got '{keep}'")
    model_dir, teacher_dir, output = Path(model_dir), Path(teacher_dir), Path(output)
    if not is_embedding_export(model_dir):
        raise SynePruneError(f"'{model_dir}' is not an embedding export of syne-prune (no embedding_task in {EXPORT_FILE}); export it again")
    if output.resolve() in (model_dir.resolve(), teacher_dir.resolve()):
        raise SynePruneError("--output is the export or the teacher; recovery writes a new export, choose another --output")
    record = ExportDir(model_dir).read()
    pooling, data_record = Pooling.from_json(record["pooling"]), record["data"]
    spec = TaskSpec.from_json(record["embedding_task"])
    data = load_embedding_data(spec, data_record["validation_fraction"], data_record["seed"], max_train_examples, max_eval_examples)
    tokenizer = load_tokenizer(str(model_dir), f"export '{model_dir}'")
    seed_everything(seed)
    teacher_source = resolve_model(str(teacher_dir))
    teacher_source = str(Path(teacher_source).resolve()) if Path(teacher_source).is_dir() else teacher_source
    student, teacher = load_encoder(str(model_dir)), FrozenTeacher(load_encoder(teacher_source), pooling, teacher_source)
    if teacher.model.encoder.config.hidden_size != student.config.hidden_size:
        raise SynePruneError(f"teacher '{teacher_dir}' embeds in {teacher.model.encoder.config.hidden_size} dimensions, the export in "
                             f"{student.config.hidden_size}; give the unpruned model the export comes from")
    prepare_output(output, {"model": str(model_dir.resolve())}, False, overwrite, EXPORT_FILE)
    max_length = data_record["max_length"]
    scorer = EmbeddingScorer(pooling, tokenizer, max_length, data.pairs, data.validation,
                             embed(teacher.model, pooling, data.validation, tokenizer, max_length, eval_batch_size), eval_batch_size)
    wrapped = EmbeddingModel(student, pooling)
    loop = TrainingLoop(wrapped, encode_sentences(data.train, tokenizer, max_length), tokenizer,
                        EmbeddingDistillationStep(teacher, record.get("embedding_loss", "cosine")),
                        LoopSettings(epochs, lr, batch_size, seed, warmup_ratio, description="recovery, embedding", progress=progress))
    teacher.to(loop.device)
    before = {"validation": scorer.scores(student), "test": None}
    best = BestOnValidation(output / RESUME_DIR)
    best.offer(student, 0, before["validation"])

    def evaluate(epoch_record: dict[str, Any]) -> None:
        epoch_record["validation"] = scorer.scores(student)
        if keep == "best":
            best.offer(student, loop.epochs_done, epoch_record["validation"])

    loop.run(evaluate)
    validated = [before["validation"]] + [h["validation"] for h in loop.history]  # per epoch, 0 = the export as it came
    kept_epoch = best.epoch if keep == "best" else epochs
    if kept_epoch != epochs:
        best.load_into(student)
    last, after = {"validation": validated[-1], "test": None}, {"validation": validated[kept_epoch], "test": None}
    recovery = {"source_export": str(model_dir.resolve()) if record_source else None, "teacher": teacher.source,
                "settings": {"epochs": epochs, "lr": lr, "batch_size": batch_size, "warmup_ratio": warmup_ratio, "seed": seed, "keep": keep},
                "num_train_examples": len(data.train), "history": loop.history, "train_time_s": sum(h["epoch_time_s"] for h in loop.history),
                "before": before, "after": after, "kept_epoch": kept_epoch, "last": last}
    new_record = {**record, "recovery": recovery, "versions": software_versions()}
    student = student.cpu().eval()

    def extra_files(staging: Path) -> None:
        write_sentence_transformers_files(staging, pooling, student.config.hidden_size, max_length)
        if onnx:
            export_onnx(EmbeddingModel(student, pooling).eval(), staging / ONNX_FILE)

    save_export(student, output, new_record, tokenizer=tokenizer, overwrite=True, extra_files=extra_files)
    return new_record
