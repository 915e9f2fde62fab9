"""Standard-NAS trials: each fine-tunes its configuration's own sub-network of the pre-trained model
(``syne_prune.search.finetune``), reporting after every epoch (the fidelity)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from syne_prune.artifacts import SearchRecord
from syne_prune.data import get_task, load_task
from syne_prune.errors import SynePruneError
from syne_prune.export import training_data_record
from syne_prune.models import check_model_files, check_model_settings, get_family, load_model_config, load_tokenizer
from syne_prune.models.local_weights import resolve_model
from syne_prune.search import finetune
from syne_prune.search.finetune import FineTuneSettings, load_pretrained, load_trained
from syne_prune.search.kinds.base import ExportSource, PreparedSearch, TrialKind
from syne_prune.search_spaces import get_search_space


class StandardNAS(TrialKind):
    """``--mode standard`` (``SearchConfig.finetune``): the pre-trained model and task replace the super-network."""

    name = "standard"
    default_scheduler = "moasha"
    default_backend = "local"
    default_test_split = "every-trial"
    sagemaker_entry = "finetune"
    trains_per_trial = True
    ledger_columns = ("epoch", "train_loss", "checkpoint")

    @property
    def entry_point(self) -> str:
        return finetune.__file__

    def check(self, config) -> None:
        config.finetune.check()

    def check_test_split(self, config) -> None:
        if config.test_split != "every-trial":
            raise SynePruneError("standard NAS scores every trial on the test split after each epoch: drop --test-split pareto")

    def max_fidelity(self, config) -> int:
        return config.finetune.epochs

    def prepare(self, config) -> PreparedSearch:
        """Check the model (architecture, tokenizer, readable and finite weight files, limits) and the task's files, so
        that no trial starts on a model that cannot be loaded; the trials get the model and data directory as absolute paths."""
        settings = config.finetune
        model_config = load_model_config(settings.model)  # a missing model or an unknown architecture fails here
        space = get_search_space(settings.search_space, get_family(model_config).shape(model_config))
        load_task(settings.task, settings.data_dir, settings.validation_fraction, settings.seed, max_train_examples=1, max_eval_examples=1)
        source = str(resolve_model(settings.model))
        tokenizer = load_tokenizer(source, f"model '{settings.model}'")
        check_model_files(source, f"model '{settings.model}'", "use a checkpoint with finite weights")
        check_model_settings(model_config, get_task(settings.task), tokenizer, settings.max_length, model_name=f"model '{settings.model}'")
        resolved = replace(settings, model=str(Path(source).resolve()) if Path(source).exists() else settings.model,
                           data_dir=str(Path(settings.data_dir).resolve()) if settings.data_dir else None)
        return PreparedSearch(config=config, space=space, task=settings.task, metric=get_task(settings.task).metric_name,
                              constants=resolved.as_constants(tuple(config.objectives)), model=settings.model)

    def export_source(self, search_dir: Path, saved: SearchRecord, row: dict[str, Any]) -> ExportSource:
        """The trial's own fine-tuned sub-network (its checkpoint: under ``search_dir``, or on S3)."""
        settings = FineTuneSettings(**saved.settings["finetune"])
        model, tokenizer, space = load_pretrained(settings)
        config = space.validate({k: row[k] for k in space.config_space})
        checkpoint = str(row["checkpoint"])
        trained = load_trained(model, space, config, checkpoint if checkpoint.startswith("s3://") else search_dir / checkpoint)
        return ExportSource(model, tokenizer, space, config, trained, training_data_record(saved.settings["finetune"]))
