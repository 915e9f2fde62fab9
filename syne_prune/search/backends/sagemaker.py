"""``--backend sagemaker``: one SageMaker training job per trial (``syne_prune.search.sagemaker``)."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from syne_tune.backend.trial_backend import TrialBackend

from syne_prune.errors import SynePruneError
from syne_prune.search.backends.base import SearchBackend
from syne_prune.search.sagemaker import SageMakerBackend, wait_between_polls

CHANNEL_OF = {"supernet": "supernet", "model": "model", "data_dir": "data"}  # constant -> input channel (a local directory)


class SageMakerSearchBackend(SearchBackend):
    """Checks S3 and uploads the source and the channels (each once) before the output folder is touched;
    a trial that trains keeps its weights at its ``checkpoint_s3_uri``."""

    name = "sagemaker"
    default_test_split = "every-trial"  # a job scores its trial on the test split: no second pass here after the search
    start_jobs_without_delay = False  # a stopping job still holds its instance

    @classmethod
    def check(cls, config) -> None:
        if config.sagemaker is None:
            raise SynePruneError("--backend sagemaker needs --role, --region and --s3-prefix")
        config.sagemaker.check()

    @property
    def sleep_time(self) -> float:
        return wait_between_polls()

    def prepare(self) -> None:
        """A prepared SageMaker backend: S3 writable, source and channels uploaded (each once), image known."""
        settings = self.config.sagemaker
        channels = {CHANNEL_OF[key]: str(value) for key, value in self.prepared.constants.items()
                    if key in CHANNEL_OF and value and Path(str(value)).is_dir()}
        if settings.instance_count != 1:
            raise SynePruneError("--instance-count above 1: a trial is not distributed, every host would run it; use --n-workers for parallel trials")
        name = f"sp-{re.sub(r'[^a-zA-Z0-9-]', '-', self.output.resolve().name)[:24]}-{uuid.uuid4().hex[:10]}"  # unique per account and region
        self.trial_backend = SageMakerBackend(settings, self.kind.sagemaker_entry, channels,
                                              checkpointing=self.kind.trains_per_trial, job_prefix=name)
        self.trial_backend.prepare()

    def _make_trial_backend(self, part_dir: Path) -> TrialBackend:
        return self.trial_backend

    def checkpoint(self, trial_id: int) -> str:
        return self.trial_backend.checkpoint_uri(trial_id)
