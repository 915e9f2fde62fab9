"""What a SageMaker job of syne-prune runs (the uploaded entry script calls ``main``): a trial, through
``syne_prune.search.run_sagemaker_job``, or — entry ``command``, started by ``launchers/*.py`` — a whole
``syne-prune ARGV`` (super-network training, a search inside one job)."""
from __future__ import annotations

import json

from syne_prune.aws import in_model_dir, resolve_channel
from syne_prune.cli import main as cli
from syne_prune.search import run_sagemaker_job


def run_command(values: dict[str, str]) -> int:
    """``syne-prune ARGV`` with ``ARGV`` the JSON list in the job's ``syne_prune_argv`` hyperparameter (every
    ``sm-channel:NAME`` in it replaced by the channel's directory, ``/opt/ml/model/...`` by the same path in
    ``SM_MODEL_DIR``); returns its exit code."""
    return cli([in_model_dir(resolve_channel(a)) for a in json.loads(values["syne_prune_argv"])])


def main(argv: list[str] | None = None) -> int:
    """Run the job (``syne_prune.search.run_sagemaker_job`` with the ``command`` entry added); returns the exit code."""
    return run_sagemaker_job(argv, {"command": run_command})
