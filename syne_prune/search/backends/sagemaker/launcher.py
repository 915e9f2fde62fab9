"""One SageMaker job running ``syne-prune ARGV`` (super-network training, or a whole search in one job); the
command line of the scripts in ``launchers/`` that start it is ``syne_prune.cli.sagemaker.launcher_main``."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from syne_prune.artifacts import SupernetDir
from syne_prune.aws import CHANNEL_PREFIX, MODEL_DIR, TASK_CHANNEL, SageMakerSettings, call_aws
from syne_prune.data import spec_files
from syne_prune.errors import SynePruneError
from syne_prune.models import resolve_model
from syne_prune.search.backends.sagemaker.trial_backend import SageMakerBackend

DIRECTORY_FLAGS = {"--model": "model", "--teacher": "teacher", "--supernet": "supernet", "--data-dir": "data", "--dataset": "dataset"}
"""Options whose value, a local directory (or a model packaged on this machine), travels as an input channel."""
FILE_FLAGS = {"--train-file": "train_file", "--validation-file": "validation_file", "--test-file": "test_file"}
"""Options whose value, a local file, travels as an input channel holding that one file."""


def launch_cli_job(settings: SageMakerSettings, argv: list[str], job_name: str, session=None) -> dict[str, Any]:
    """One SageMaker job that runs ``syne-prune ARGV``: super-network training, or a whole search inside one job.

    The local directories after ``DIRECTORY_FLAGS`` and the local files after ``FILE_FLAGS`` become input channels
    (uploaded once), the arguments ``sm-channel:NAME`` or ``sm-channel:NAME/FILE`` that the job resolves; a search
    of a super-network trained on the user's own files (``--supernet``) takes those files along (channel ``task``,
    read with ``--data-dir``). ``--output X`` becomes ``/opt/ml/model/X``, which SageMaker uploads to
    ``S3_PREFIX/JOB/output/JOB/output/model.tar.gz`` when the job ends. Returns the job request. Raises
    SynePruneError (one line) for bad settings and failed pre-flight checks (nothing uploaded then), and when AWS
    refuses the job."""
    import boto3  # optional (syne-prune[sagemaker])

    settings.check()
    args, channels = job_arguments(argv)
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"{job_name}-{time.strftime('%Y%m%d-%H%M%S')}")[:63].strip("-")
    backend = SageMakerBackend(settings, "command", channels, session=session or boto3.session.Session(region_name=settings.region),
                               job_prefix=name)
    backend.prepare()
    request = backend.job_request(0, 0, {"syne_prune_argv": json.dumps(args)})
    request["TrainingJobName"] = name
    call_aws(backend.sm, "create_training_job", f"create_training_job {name} failed", **request)
    return request


def job_arguments(argv: list[str]) -> tuple[list[str], dict[str, str | dict[str, Path]]]:
    """``argv`` as the job runs it, and the input channels it reads (``{name: local directory or {file name: path}}``):
    local paths after ``DIRECTORY_FLAGS`` and ``FILE_FLAGS`` replaced by their channels (``--flag=value`` too),
    ``--output X`` by ``/opt/ml/model/X``, and ``--data-dir sm-channel:task`` added for a ``--supernet`` trained on
    the user's own data files (none given). Raises ``SynePruneError`` for a file option whose file is not here."""
    args = [piece for arg in argv for piece in (arg.split("=", 1) if arg.startswith("--") and "=" in arg else [arg])]
    channels: dict[str, str | dict[str, Path]] = {}
    for index, flag in enumerate(args[:-1]):
        value = args[index + 1]
        if flag in DIRECTORY_FLAGS:
            local = Path(value) if Path(value).is_dir() else Path(resolve_model(value)) if flag in ("--model", "--teacher") else None
            if local is not None and local.is_dir():
                channels[DIRECTORY_FLAGS[flag]] = str(local)
                args[index + 1] = CHANNEL_PREFIX + DIRECTORY_FLAGS[flag]
        elif flag in FILE_FLAGS:
            if not Path(value).is_file():
                raise SynePruneError(f"{flag} {value}: no such file on this machine; the launcher uploads it for the job, "
                                     "give the path of a local file")
            channels[FILE_FLAGS[flag]] = {Path(value).name: Path(value)}
            args[index + 1] = f"{CHANNEL_PREFIX}{FILE_FLAGS[flag]}/{Path(value).name}"
        elif flag == "--output":
            args[index + 1] = f"{MODEL_DIR}/{Path(value).name}"
    supernet = channels.get("supernet")
    if isinstance(supernet, str) and "--data-dir" not in args and SupernetDir(supernet).is_complete():
        files = spec_files(SupernetDir(supernet).read()["task"])
        if files:
            channels[TASK_CHANNEL] = files
            args += ["--data-dir", CHANNEL_PREFIX + TASK_CHANNEL]
    return args, channels
