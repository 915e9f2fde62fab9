"""Recovery of an embedding export: epochs of distilling the teacher's embeddings (the unpruned model's) into the
exported, physically smaller encoder, on the same sentences the super-network was trained on (the export records its
task, split seed and validation fraction). It trains as ``syne_prune.recovery.recover`` does, in its
``train_recovery``: a number of epochs or ``auto`` (until the validation error has not improved for ``patience``
epochs, at most ``max_epochs``), with its resume state in ``OUTPUT/.resume``, and with ``keep="best"`` the weights with
the lowest validation error among the export as it came and every epoch's end (``BestOnValidation``). The result is a
new embedding export whose ``syne_prune.json`` adds ``recovery`` (teacher, settings, history, ``epochs_run``,
``stop_reason``, the validation metric before and after; no test data), in the format ``syne-prune recover`` prints."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from syne_prune.artifacts import EXPORT_FILE, ExportDir
from syne_prune.data import TaskSpec
from syne_prune.errors import SynePruneError
from syne_prune.export import export_onnx, save_export
from syne_prune.model_card import check_replaceable
from syne_prune.models import load_tokenizer, resolve_model
from syne_prune.precision import backward
from syne_prune.recovery import RecoverySettings, train_recovery
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


EMBEDDING_SETTINGS = ("epochs", "lr", "batch_size", "warmup_ratio", "seed", "max_train_examples", "max_eval_examples", "eval_batch_size",
                      "keep", "patience", "max_epochs")  # the RecoverySettings that apply to an embedding export (recorded)


def recover_embedding(model_dir: str | Path, teacher_dir: str | Path, epochs: int | str, output: str | Path, *, lr: float = RecoverySettings.lr,
                      batch_size: int = 32, warmup_ratio: float = 0.0, seed: int = 0, max_train_examples: int | None = None,
                      max_eval_examples: int | None = None, eval_batch_size: int = 32, keep: str = "best",
                      patience: int = RecoverySettings.patience, max_epochs: int = RecoverySettings.max_epochs, onnx: bool = False,
                      resume: bool = False, overwrite: bool = False, progress: bool = True, record_source: bool = True) -> dict[str, Any]:
    """Distil ``teacher_dir``'s embeddings into the embedding export ``model_dir`` for ``epochs`` epochs (a number, or
    ``"auto"``: until the validation error has not improved for ``patience`` epochs, at most ``max_epochs``; as
    ``syne_prune.recovery.recover``) on its recorded sentences and write a new embedding export to ``output``; returns
    its ``syne_prune.json`` record. ``resume``: continue a killed run from its last finished epoch (its state is in
    ``output/.resume``), with the same arguments. Raises ``SynePruneError`` (before ``output`` is touched) for an export
    that is not an embedding export, a teacher of another hidden size, bad settings, an existing ``output`` without
    ``overwrite``/``resume``, or a resume with other settings than the killed run's."""
    settings = RecoverySettings(epochs, lr=lr, batch_size=batch_size, warmup_ratio=warmup_ratio, seed=seed, max_train_examples=max_train_examples,
                                max_eval_examples=max_eval_examples, eval_batch_size=eval_batch_size, keep=keep, patience=patience,
                                max_epochs=max_epochs)
    settings.check()
    model_dir, teacher_dir, output = Path(model_dir), Path(teacher_dir), Path(output)
    if not is_embedding_export(model_dir):
        raise SynePruneError(f"'{model_dir}' is not an embedding export of syne-prune (no embedding_task in {EXPORT_FILE}); export it again")
    if output.resolve() in (model_dir.resolve(), teacher_dir.resolve()):
        raise SynePruneError("--output is the export or the teacher; recovery writes a new export, choose another --output")
    if overwrite or resume:
        check_replaceable(output, "--overwrite" if overwrite else "--resume")
    record = ExportDir(model_dir).read()
    pooling, data_record = Pooling.from_json(record["pooling"]), record["data"]
    data = load_embedding_data(TaskSpec.from_json(record["embedding_task"]), data_record["validation_fraction"], data_record["seed"],
                               max_train_examples, max_eval_examples)
    tokenizer = load_tokenizer(str(model_dir), f"export '{model_dir}'")
    seed_everything(seed)
    teacher_source = resolve_model(str(teacher_dir))
    teacher_source = str(Path(teacher_source).resolve()) if Path(teacher_source).is_dir() else teacher_source
    student, teacher = load_encoder(str(model_dir)), FrozenTeacher(load_encoder(teacher_source), pooling, teacher_source)
    if teacher.model.encoder.config.hidden_size != student.config.hidden_size:
        raise SynePruneError(f"teacher '{teacher_dir}' embeds in {teacher.model.encoder.config.hidden_size} dimensions, the export in "
                             f"{student.config.hidden_size}; give the unpruned model the export comes from")
    recorded_settings = {name: getattr(settings, name) for name in EMBEDDING_SETTINGS}
    resume_settings = {"model": str(model_dir.resolve()), "teacher": teacher_source, **recorded_settings}
    prepare_output(output, resume_settings, resume, overwrite, EXPORT_FILE)
    if resume and ExportDir(output).is_export() and not (output / RESUME_DIR).exists():  # already finished
        return ExportDir(output).read()
    results = _train(settings, student, teacher, record, data, tokenizer, output, resume, resume_settings, progress)
    recovery = {"source_export": str(model_dir.resolve()) if record_source else None, "teacher": teacher.source,
                "settings": recorded_settings, "num_train_examples": len(data.train), **results}
    new_record = {**record, "recovery": recovery, "versions": software_versions()}
    student = student.cpu().eval()
    max_length = data_record["max_length"]

    def extra_files(staging: Path) -> None:
        write_sentence_transformers_files(staging, pooling, student.config.hidden_size, max_length)
        if onnx:
            export_onnx(EmbeddingModel(student, pooling).eval(), staging / ONNX_FILE)

    save_export(student, output, new_record, tokenizer=tokenizer, overwrite=True, extra_files=extra_files)  # replaces .resume too
    return new_record


def _train(settings: RecoverySettings, student: torch.nn.Module, teacher: FrozenTeacher, record: dict[str, Any], data: Any, tokenizer: Any,
           output: Path, resume: bool, resume_settings: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Distil ``teacher`` into ``student`` (in place: it ends with the weights to write) on ``data``'s training sentences,
    scored on its validation pairs or sentences, in ``syne_prune.recovery.train_recovery`` (early stopping, the resume
    state in ``output/.resume``); returns the record's results (no test data: ``test`` is None)."""
    pooling, max_length = Pooling.from_json(record["pooling"]), record["data"]["max_length"]
    scorer = EmbeddingScorer(pooling, tokenizer, max_length, data.pairs, data.validation,
                             embed(teacher.model, pooling, data.validation, tokenizer, max_length, settings.eval_batch_size), settings.eval_batch_size)
    loop = TrainingLoop(EmbeddingModel(student, pooling), encode_sentences(data.train, tokenizer, max_length), tokenizer,
                        EmbeddingDistillationStep(teacher, record.get("embedding_loss", "cosine")),
                        LoopSettings(settings.epochs_to_train, settings.lr, settings.batch_size, settings.seed, settings.warmup_ratio,
                                     description="recovery, embedding", progress=progress))
    teacher.to(loop.device)
    before = {"validation": scorer.scores(student), "test": None}
    return train_recovery(loop, student, settings, output, before, lambda: scorer.scores(student), lambda: None, resume, resume_settings)
