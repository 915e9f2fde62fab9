"""Standard-NAS trials: each fine-tunes its configuration's own sub-network of the pre-trained model
(``syne_prune.search.finetune``), reporting after every epoch (the fidelity)."""
from __future__ import annotations

import argparse
import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

from syne_prune.artifacts import SearchRecord
from syne_prune.data import load_task, resolve_task, task_record
from syne_prune.errors import SynePruneError
from syne_prune.export import training_data_record
from syne_prune.models import check_model_files, check_model_settings, get_family, load_model_config, load_tokenizer, resolve_model
from syne_prune.options import add_option, api_kwargs
from syne_prune.search import finetune
from syne_prune.search.finetune import FineTuneSettings, load_pretrained, load_trained
from syne_prune.search.kinds.base import ExportSource, PreparedSearch, TrialKind
from syne_prune.search_spaces import SEARCH_SPACES, get_search_space


class StandardNAS(TrialKind):
    """``--trial-kind standard`` (``FineTuneSettings``): the pre-trained model and task replace the super-network."""

    name = "standard"
    settings_type = FineTuneSettings
    option_group = "standard NAS (--trial-kind standard): how every trial fine-tunes its sub-network"
    default_scheduler = "moasha"
    default_backend = "local"
    default_test_split = "every-trial"
    sagemaker_entry = "finetune"
    trains_per_trial = True
    ledger_columns = ("epoch", "train_loss", "checkpoint")

    @property
    def entry_point(self) -> str:
        return finetune.__file__

    def add_options(self, group) -> None:
        """``FineTuneSettings``' fields that the search does not share (``--data-dir``, ``--seed``,
        ``--eval-batch-size`` and ``--max-eval-examples`` are the search's own, read by both; the task, ``--task`` or
        the user's data, comes from the command line's task options, as for ``train-supernet``)."""
        option = functools.partial(add_option, group, FineTuneSettings)
        option("model", "pre-trained model: a directory or a known id (e.g. sentence-transformers/all-MiniLM-L6-v2)")
        option("search_space", "space the sub-networks come from", choices=list(SEARCH_SPACES))
        option("epochs", "epochs per trial (MO-ASHA's maximum resource)")
        option("lr")
        option("batch_size")
        option("max_length")
        option("validation_fraction")
        option("max_train_examples")

    def settings_from_args(self, args: argparse.Namespace) -> FineTuneSettings:
        if getattr(args, "supernet", None):
            raise SynePruneError("--trial-kind standard fine-tunes from --model; drop --supernet (or drop --trial-kind standard)")
        if not (args.model and args.task):
            raise SynePruneError("--trial-kind standard needs --model ID_OR_DIR and --task NAME (or your own data: --train-file / --dataset)")
        return FineTuneSettings(**api_kwargs(FineTuneSettings, args, task=args.task))

    def check(self, config) -> None:
        super().check(config)
        config.trial_settings.check()

    def check_test_split(self, config) -> None:
        if config.test_split != "every-trial":
            raise SynePruneError("standard NAS scores every trial on the test split after each epoch: drop --test-split pareto")

    def max_fidelity(self, config) -> int:
        return config.trial_settings.epochs

    def prepare(self, config) -> PreparedSearch:
        """Check the model (architecture, tokenizer, readable and finite weight files, limits) and the task's files, so
        that no trial starts on a model that cannot be loaded; the trials get the model and data directory as absolute paths.
        The user's data is resolved here, once (columns, type, metric, class names from the model's ``id2label``, every
        row checked, the files' sha256): every trial gets that resolved specification, and search.json records it."""
        settings = config.trial_settings
        model_config = load_model_config(settings.model)  # a missing model or an unknown architecture fails here
        space = get_search_space(settings.search_space, get_family(model_config).shape(model_config))
        task = resolve_task(settings.task, model_config)
        settings = replace(settings, task=task_record(task))
        config = replace(config, trial_settings=settings)
        load_task(task, settings.data_dir, settings.validation_fraction, settings.seed, max_train_examples=1, max_eval_examples=1)
        source = str(resolve_model(settings.model))
        tokenizer = load_tokenizer(source, f"model '{settings.model}'")
        check_model_files(source, f"model '{settings.model}'", "use a checkpoint with finite weights")
        check_model_settings(model_config, task, tokenizer, settings.max_length, model_name=f"model '{settings.model}'")
        resolved = replace(settings, model=str(Path(source).resolve()) if Path(source).exists() else settings.model,
                           data_dir=str(Path(settings.data_dir).resolve()) if settings.data_dir else None)
        return PreparedSearch(config=config, space=space, task=settings.task, metric=task.metric_name,
                              constants=resolved.as_constants(tuple(config.objectives)), model=settings.model)

    def export_source(self, search_dir: Path, saved: SearchRecord, row: dict[str, Any]) -> ExportSource:
        """The trial's own fine-tuned sub-network (its checkpoint: under ``search_dir``, or on S3)."""
        settings = FineTuneSettings(**saved.settings["trial_settings"])
        model, tokenizer, space = load_pretrained(settings)
        config = space.validate({k: row[k] for k in space.config_space})
        checkpoint = str(row["checkpoint"])
        trained = load_trained(model, space, config, checkpoint if checkpoint.startswith("s3://") else search_dir / checkpoint)
        return ExportSource(model, tokenizer, space, config, trained, training_data_record(saved.settings["trial_settings"]))
