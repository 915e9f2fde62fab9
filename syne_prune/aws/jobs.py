"""What a SageMaker job of syne-prune and its entry script (``entry.py``) agree on: names, limits, markers,
how a configuration with more values than a job may have travels (``pack_hyperparameters``), and the run's precision
and device a job computes in (``job_compute_environment``)."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping

from syne_prune.devices import DEVICE_ENV
from syne_prune.precision import AUTO, PRECISION_ENV

CHANNEL_PREFIX = "sm-channel:"
TASK_CHANNEL = "task"  # the input channel of the user's data files (``syne_prune.data.spec_files``' names)
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
MODEL_DIR = "/opt/ml/model"  # SageMaker uploads it as the job's model.tar.gz
ENTRY_SCRIPT = "syne_prune_sm_entry.py"
MAX_HYPERPARAMETERS = 100  # per training job (SageMaker's limit)
MAX_HYPERPARAMETER_CHARS = 2500  # per value (SageMaker's limit)
PACKED_CONFIG = "syne_prune_config_"  # + K: the K-th piece of a configuration sent as JSON
JOB_END_MARKER = "[syne-prune] job finished"  # the entry script's last line, in every job's log


def pack_hyperparameters(values: dict[str, str]) -> dict[str, str]:
    """All values as one JSON text, cut into pieces a SageMaker hyperparameter can hold once JSON-encoded (as the
    backend sends every value; ``unpack_hyperparameters`` is the inverse)."""
    text = json.dumps(values, separators=(",", ":"))
    pieces, piece, size = [], [], 2  # size: the piece's JSON encoding, quotes included
    for char in text:
        cost = len(json.dumps(char)) - 2
        if size + cost > MAX_HYPERPARAMETER_CHARS:
            pieces.append("".join(piece))
            piece, size = [], 2
        piece.append(char)
        size += cost
    pieces.append("".join(piece))
    return {f"{PACKED_CONFIG}{index}": piece for index, piece in enumerate(pieces)}


def unpack_hyperparameters(values: dict[str, str]) -> dict[str, str]:
    """The inverse of ``pack_hyperparameters``; other keys are kept as they are."""
    pieces = sorted((int(k[len(PACKED_CONFIG):]), v) for k, v in values.items() if k.startswith(PACKED_CONFIG))
    if not pieces:
        return values
    kept = {k: v for k, v in values.items() if not k.startswith(PACKED_CONFIG)}
    return {**json.loads("".join(v for _, v in pieces)), **kept}


def resolve_channel(value: str) -> str:
    """``sm-channel:NAME`` (``CHANNEL_PREFIX``) as the directory of the job's input channel NAME (``SM_CHANNEL_NAME``),
    ``sm-channel:NAME/FILE`` as that file in it; any other value as it is. Raises RuntimeError when the channel is not
    mounted."""
    if not value.startswith(CHANNEL_PREFIX):
        return value
    name, _, file = value[len(CHANNEL_PREFIX):].partition("/")
    variable = f"SM_CHANNEL_{name.upper()}"
    if variable not in os.environ:
        raise RuntimeError(f"input channel '{name}' is not mounted ({variable} is not set)")
    return os.path.join(os.environ[variable], file) if file else os.environ[variable]


def in_model_dir(argument: str) -> str:
    """A path under ``/opt/ml/model`` (``MODEL_DIR``) re-rooted at the container's model directory (``SM_MODEL_DIR``,
    set by SageMaker's training toolkit: what the job uploads as its ``model.tar.gz``); any other argument as it is."""
    model_dir = os.environ.get("SM_MODEL_DIR", MODEL_DIR)
    if argument == MODEL_DIR or argument.startswith(MODEL_DIR + "/"):
        return model_dir + argument[len(MODEL_DIR):]
    return argument


def requested_compute(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The precision and kind of device the run asked for (``--precision``, ``--device``; ``auto`` where it did not), as
    a trial's job resolves them on its own instance: ``{"precision": "auto" | name, "device": "auto" | "cpu" | "cuda"}``
    (``cuda:N`` is ``cuda``: a job sees its instance's GPUs, not this machine's)."""
    environ = os.environ if environ is None else environ
    device = (environ.get(DEVICE_ENV) or AUTO).partition(":")[0]
    return {"precision": environ.get(PRECISION_ENV) or AUTO, "device": device}


def job_compute_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a trial's job gets for the run's ``--precision`` and ``--device`` (``requested_compute``):
    what the run chose; nothing for ``auto``, which the job resolves on its instance (a GPU instance: bf16 where the
    GPU computes in it, else fp32)."""
    requested = requested_compute(environ)
    return {name: requested[key] for name, key in ((PRECISION_ENV, "precision"), (DEVICE_ENV, "device")) if requested[key] != AUTO}
