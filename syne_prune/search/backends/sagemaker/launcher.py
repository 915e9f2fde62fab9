"""One SageMaker job running ``syne-prune ARGV`` (super-network training, or a whole search in one job); the
command line of the scripts in ``launchers/`` that start it is ``syne_prune.cli.sagemaker.launcher_main``."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from syne_prune.aws import CHANNEL_PREFIX, MODEL_DIR, SageMakerSettings, call_aws
from syne_prune.models import resolve_model
from syne_prune.search.backends.sagemaker.trial_backend import SageMakerBackend

CHANNEL_FLAGS = {"--model": "model", "--supernet": "supernet", "--data-dir": "data"}


def launch_cli_job(settings: SageMakerSettings, argv: list[str], job_name: str, session=None) -> dict[str, Any]:
    """One SageMaker job that runs ``syne-prune ARGV``: super-network training, or a whole search inside one job.

    The local directories after ``--model``, ``--supernet`` and ``--data-dir`` become input channels
    (uploaded once); ``--output X`` becomes ``/opt/ml/model/X``, which SageMaker uploads to
    ``S3_PREFIX/JOB/output/JOB/output/model.tar.gz`` when the job ends. Returns the job request. Raises
    SynePruneError (one line) for bad settings and failed pre-flight checks (nothing uploaded then), and when AWS
    refuses the job."""
    import boto3  # optional (syne-prune[sagemaker])

    settings.check()
    args, channels = list(argv), {}
    for index, flag in enumerate(args[:-1]):
        value = args[index + 1]
        if flag in CHANNEL_FLAGS:
            local = Path(value) if Path(value).is_dir() else Path(str(resolve_model(value))) if flag == "--model" else None
            if local is not None and local.is_dir():
                channels[CHANNEL_FLAGS[flag]] = str(local)
                args[index + 1] = CHANNEL_PREFIX + CHANNEL_FLAGS[flag]
        elif flag == "--output":
            args[index + 1] = f"{MODEL_DIR}/{Path(value).name}"
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}")[:63].strip("-")
    backend = SageMakerBackend(settings, "command", channels, session=session or boto3.session.Session(region_name=settings.region),
                               job_prefix=name)
    backend.prepare()
    request = backend.job_request(0, 0, {"syne_prune_argv": json.dumps(args)})
    request["TrainingJobName"] = name
    call_aws(backend.sm, "create_training_job", f"create_training_job {name} failed", **request)
    return request
