"""Weight-sharing trials: each evaluates its configuration's sub-network of one shared, verified super-network
(``syne_prune.search.trial``), reporting after each chunk of the validation split (the fidelity levels)."""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transformers import AutoConfig

from syne_prune.artifacts import SearchRecord
from syne_prune.errors import SynePruneError
from syne_prune.evaluation import warn_if_not_learned
from syne_prune.export import training_data_record
from syne_prune.models import get_family, usable_positions
from syne_prune.options import add_option
from syne_prune.search import trial
from syne_prune.search.kinds.base import ExportSource, PreparedSearch, TrialKind
from syne_prune.search.schedulers import MULTI_FIDELITY
from syne_prune.search.trial import TrialSettings, fidelity_levels, load_search_data, make_evaluator
from syne_prune.search_spaces import get_search_space
from syne_prune.supernet import check_supernet_settings, load_supernet, verify_checkpoint


@dataclass(frozen=True)
class WeightSharingSettings:
    """A weight-sharing search (``SearchConfig.trial_settings``): the ``supernet`` checkpoint directory (written by
    train-supernet) whose sub-networks the trials evaluate, and ``fidelity_levels``, the chunks of the validation
    split a multi-fidelity scheduler (MO-ASHA) sees as its resource."""

    supernet: str
    fidelity_levels: int = 9


def latency_seq_len(model_config) -> int:
    """Tokens per sequence the latency objective is timed on (weight-sharing): 128, or fewer when the model
    has fewer usable positions (``syne_prune.models.usable_positions``)."""
    return min(TrialSettings.latency_seq_len, usable_positions(model_config) or TrialSettings.latency_seq_len)


def evaluator_once(settings: TrialSettings):
    """A function returning the trials' own ``Evaluator`` for ``settings`` (the search's splits), built on its
    first call only (it loads the super-network). Without the latency objective: nothing scored after the
    search needs its reference timing."""
    made: list = []

    def evaluator():
        if not made:
            made.append(make_evaluator(replace(settings, objectives=tuple(o for o in settings.objectives if o != "latency"))))
        return made[0]

    return evaluator


class WeightSharing(TrialKind):
    """``--trial-kind weight-sharing`` (``WeightSharingSettings``): trials evaluate sub-networks of one super-network."""

    name = "weight-sharing"
    settings_type = WeightSharingSettings
    option_group = "weight-sharing (--trial-kind weight-sharing): the super-network whose sub-networks the trials evaluate"
    default_scheduler = "ehvi"  # the highest hypervolume on STS-B and on 2 of 3 MRPC super-networks (BENCHMARKS.md)
    default_backend = "pool"
    default_test_split = "pareto"
    sagemaker_entry = "trial"
    trains_per_trial = False

    @property
    def entry_point(self) -> str:
        return trial.__file__

    def add_options(self, group) -> None:
        option = functools.partial(add_option, group, WeightSharingSettings)
        option("supernet", "weight-sharing: checkpoint directory written by train-supernet", default=None)
        option("fidelity_levels", "MO-ASHA: validation split in this many chunks")

    def settings_from_args(self, args: argparse.Namespace) -> WeightSharingSettings:
        if not args.supernet:
            raise SynePruneError("give --supernet DIR (from train-supernet), or --trial-kind standard --model M --task T")
        task = getattr(args, "task", None)
        extra = ["--model"] * bool(getattr(args, "model", None)) + ([("--task" if isinstance(task, str) else "--train-file/--dataset")] if task else [])
        if extra:
            raise SynePruneError(f"{', '.join(extra)} belong to --trial-kind standard; a weight-sharing search reads the model and "
                                 "task from --supernet")
        return WeightSharingSettings(supernet=args.supernet, fidelity_levels=args.fidelity_levels)

    def check(self, config) -> None:
        super().check(config)
        if config.trial_settings.fidelity_levels < 1:
            raise SynePruneError("--fidelity-levels and --eval-batch-size must be positive")

    def max_fidelity(self, config) -> int:
        return config.trial_settings.fidelity_levels if config.scheduler in MULTI_FIDELITY else 1

    def prepare(self, config) -> PreparedSearch:
        """Verify the super-network (manifest, settings) and load the trials' own splits once; caps
        ``fidelity_levels`` at one per validation example (and says so on stderr)."""
        settings = config.trial_settings
        supernet = Path(settings.supernet).resolve()
        metadata = verify_checkpoint(supernet)
        model_config = AutoConfig.from_pretrained(supernet)
        space = get_search_space(metadata["search_space"], get_family(model_config).shape(model_config))
        check_supernet_settings(supernet, metadata, model_config)
        warn_if_not_learned(metadata)
        # --data-dir: a built-in task's files, or the folder holding copies of the user's own data files (``spec_files``)
        task_files = str(Path(config.data_dir).resolve()) if config.data_dir and not isinstance(metadata["task"], str) else None
        data_dir = None if task_files else config.data_dir or metadata["hyperparameters"].get("data_dir")
        # the trials' own splits (a missing or malformed file would fail every trial or worker: it fails here, now)
        validation_examples = len(load_search_data(metadata, data_dir, config.max_eval_examples, task_files).validation)
        levels = fidelity_levels(settings.fidelity_levels, validation_examples)
        if config.scheduler in MULTI_FIDELITY and levels < settings.fidelity_levels:
            print(f"--fidelity-levels {settings.fidelity_levels} capped at {validation_examples}: one level per validation example "
                  f"at most", file=sys.stderr, flush=True)  # the trials report that many, and the search must expect as many
            config = replace(config, trial_settings=replace(settings, fidelity_levels=levels))
        settings = TrialSettings(
            supernet=str(supernet), objectives=tuple(config.objectives), fidelity_levels=self.max_fidelity(config),
            data_dir=str(Path(data_dir).resolve()) if data_dir else None, eval_batch_size=config.eval_batch_size,
            max_eval_examples=config.max_eval_examples, test_every_trial=config.test_split == "every-trial",
            latency_seq_len=latency_seq_len(model_config), task_files=task_files,
        )
        return PreparedSearch(config=config, space=space, task=metadata["task"], metric=metadata["metric"],
                              constants=settings.as_constants(), model=metadata.get("model"), trial_settings=settings,
                              evaluator=evaluator_once(settings))

    def export_source(self, search_dir: Path, saved: SearchRecord, row: dict[str, Any]) -> ExportSource:
        """The trial's sub-network of the search's super-network (extracted by export)."""
        supernet = load_supernet(saved.supernet)
        model = supernet.model
        space = get_search_space(saved.search_space, get_family(model.config).shape(model.config))
        config = space.validate({k: row[k] for k in space.config_space})
        trained_on = {**training_data_record({**supernet.metadata["hyperparameters"], "task": supernet.metadata["task"]}),
                      "supernet": str(Path(saved.supernet).resolve())}
        return ExportSource(model, supernet.tokenizer, space, config, None, trained_on)
