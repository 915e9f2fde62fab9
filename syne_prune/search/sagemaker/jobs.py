"""What a SageMaker job of syne-prune and its entry script (``entry.py``) agree on: names, limits, markers,
and how a configuration with more values than a job may have travels (``pack_hyperparameters``)."""
from __future__ import annotations

import json

CHANNEL_PREFIX = "sm-channel:"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
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
