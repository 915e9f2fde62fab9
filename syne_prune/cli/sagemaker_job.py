"""What a SageMaker job of syne-prune runs (the uploaded entry script calls ``main``): a trial, through
``syne_prune.search.sagemaker.entry``, or — entry ``command``, started by ``launchers/*.py`` — a whole
``syne-prune ARGV`` (super-network training, a search inside one job)."""
from __future__ import annotations

import json
import os

from syne_prune.cli import main as cli
from syne_prune.search.sagemaker import MODEL_DIR, entry


def in_model_dir(argument: str) -> str:
    """A path under ``/opt/ml/model`` re-rooted at the container's model directory (``SM_MODEL_DIR``, set by
    SageMaker's training toolkit: what the job uploads as its ``model.tar.gz``); any other argument as it is."""
    model_dir = os.environ.get("SM_MODEL_DIR", MODEL_DIR)
    if argument == MODEL_DIR or argument.startswith(MODEL_DIR + "/"):
        return model_dir + argument[len(MODEL_DIR):]
    return argument


def run_command(values: dict[str, str]) -> int:
    """``syne-prune ARGV`` with ``ARGV`` the JSON list in the job's ``syne_prune_argv`` hyperparameter (every
    ``sm-channel:NAME`` in it replaced by the channel's directory, ``/opt/ml/model/...`` by the same path in
    ``SM_MODEL_DIR``); returns its exit code."""
    return cli([in_model_dir(entry.resolve_channel(a)) for a in json.loads(values["syne_prune_argv"])])


def main(argv: list[str] | None = None) -> int:
    """Run the job (``entry.main`` with the ``command`` entry added); returns the exit code."""
    return entry.main(argv, {"command": run_command})
