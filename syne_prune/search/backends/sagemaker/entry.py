"""What a SageMaker training job of syne-prune runs (``syne_prune_sm_entry.py`` in the uploaded source).

It reads the job's hyperparameters from ``SM_HPS`` (or ``--key value`` arguments), replaces every
``sm-channel:NAME`` value by the channel's directory (``SM_CHANNEL_NAME``, e.g. the super-network at
``SM_CHANNEL_SUPERNET``), and runs, by ``syne_prune_entry``:
- ``trial``: a weight-sharing trial (``search/trial.py``: verifies the super-network's manifest, evaluates);
- ``finetune``: a standard-NAS trial (``search/finetune.py``; checkpoints in ``/opt/ml/checkpoints``, which SageMaker
  syncs with the trial's ``checkpoint_s3_uri``; ``SYNE_PRUNE_CHECKPOINT_DIR`` overrides it outside a job);
- ``command``: ``syne-prune ARGV`` (super-network training, or a whole search inside this one job): an entry
  the command line adds (``syne_prune.cli.sagemaker_job``, what the uploaded entry script runs), since the
  command line is a layer above the search.
Metric lines go to stdout, which SageMaker sends to CloudWatch, where the backend reads them.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping

from syne_prune.aws import CHECKPOINT_LOCAL_PATH, JOB_END_MARKER, resolve_channel, unpack_hyperparameters
from syne_prune.search import finetune, trial
from syne_prune.search.protocol import failure_line

TRIAL_MAINS = {"trial": trial.main, "finetune": finetune.main}  # syne_prune_entry -> the trial kind's entry point
# an entry of a job beyond the trials: the job's hyperparameters (channels resolved) -> exit code
JobEntry = Callable[[dict[str, str]], int]


def hyperparameters(argv: list[str]) -> dict[str, str]:
    if "SM_HPS" in os.environ:
        values = {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(os.environ["SM_HPS"]).items()}
    else:
        values = {k[2:]: v for k, v in zip(argv[0::2], argv[1::2])}
    return unpack_hyperparameters(values)


def main(argv: list[str] | None = None, entries: Mapping[str, JobEntry] | None = None) -> int:
    """Run the job: the trial of ``syne_prune_entry`` (``TRIAL_MAINS``), or one of ``entries`` (name -> callable
    taking the job's hyperparameters). Returns the exit code; the last log line is always ``JOB_END_MARKER``
    (the backend waits for it before it trusts the log)."""
    try:
        return _run(argv, entries or {})
    finally:
        print(JOB_END_MARKER, flush=True)


def _run(argv: list[str] | None, entries: Mapping[str, JobEntry]) -> int:
    try:
        values = hyperparameters(sys.argv[1:] if argv is None else argv)
        entry = values.pop("syne_prune_entry", "trial")
        values = {k: resolve_channel(v) for k, v in values.items() if not k.startswith("sagemaker_")}
        if entry in entries:
            return entries[entry](values)
        if entry == "finetune":  # the directory SageMaker syncs with the trial's checkpoint_s3_uri
            values["st_checkpoint_dir"] = os.environ.get("SYNE_PRUNE_CHECKPOINT_DIR", CHECKPOINT_LOCAL_PATH)
        args = [item for key, value in values.items() for item in (f"--{key}", value)]
    except Exception as error:  # noqa: BLE001 - the job's log says why
        print(failure_line(error), file=sys.stderr, flush=True)
        return 1
    return TRIAL_MAINS.get(entry, trial.main)(args)


if __name__ == "__main__":
    sys.exit(main())
