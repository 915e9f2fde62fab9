"""The super-network checkpoint every search worker reads, and its verification.

A checkpoint directory holds what ``save_pretrained`` writes (safetensors weights, config), the
tokenizer, and ``supernet.json`` (its reader and writer: ``syne_prune.artifacts.SupernetDir``): task, search space, strategy, seed, hyperparameters, package
versions, validation and test metrics of the largest and smallest sub-network, and a sha256 manifest
of every other file. ``supernet.json`` is written last, so a directory without it is incomplete.
Verification also refuses weights with NaN or infinite entries, and a model whose settings (sequence
length, token types, task head) do not fit the metadata (``syne_prune.models.check_model_settings``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, PreTrainedModel

from syne_prune.artifacts import SUPERNET_FILE, SupernetDir, sha256_of
from syne_prune.data import get_task
from syne_prune.errors import SynePruneError
from syne_prune.models import auto_class_of, check_model_settings, load_tokenizer
from syne_prune.numerics import require_finite_safetensors


@dataclass
class Supernet:
    model: PreTrainedModel
    tokenizer: Any
    metadata: dict[str, Any]
    path: Path


def verify_checkpoint(directory: str | Path, task: str | None = None, search_space: str | None = None,
                      model_type: str | None = None) -> dict[str, Any]:
    """Check the manifest and that the checkpoint is the one asked for; returns its metadata."""
    directory = Path(directory)
    metadata = SupernetDir(directory).read()
    for name, expected in metadata["manifest"].items():
        path = directory / name
        if not path.is_file():
            raise SynePruneError(f"super-network '{directory}' lacks {name} listed in its manifest; copy the whole directory again")
        if sha256_of(path) != expected:
            raise SynePruneError(
                f"super-network '{directory}': {name} does not match its sha256 in {SUPERNET_FILE} (truncated or "
                f"modified); copy it again or re-run train-supernet"
            )
    _require_finite_safetensors(directory, metadata["manifest"])
    for key, wanted in (("task", task), ("search_space", search_space), ("model_type", model_type)):
        if wanted is not None and metadata.get(key) != wanted:
            raise SynePruneError(
                f"super-network '{directory}' was trained with {key} '{metadata.get(key)}', not '{wanted}'; "
                f"use a checkpoint trained for {wanted} or ask for {metadata.get(key)}"
            )
    return metadata


def _require_finite_safetensors(directory: Path, manifest: dict[str, str]) -> None:
    require_finite_safetensors([directory / n for n in sorted(manifest) if n.endswith(".safetensors")], f"super-network '{directory}'")


def check_supernet_settings(directory: str | Path, metadata: dict[str, Any], model_config=None, tokenizer=None) -> None:
    """The settings in ``metadata`` (task, max_length) fit the checkpoint's model and tokenizer; else a
    one-line ``SynePruneError`` (see ``syne_prune.models.limits``)."""
    directory = Path(directory)
    if isinstance(metadata["task"], dict) and metadata["task"].get("task_type") == "embedding":
        return  # an encoder without a task head, its data checked by syne_prune.embedding
    model_config = model_config if model_config is not None else AutoConfig.from_pretrained(directory)
    if tokenizer is None:
        tokenizer = load_tokenizer(str(directory), f"super-network '{directory}'", fix="copy the whole directory again")
    check_model_settings(model_config, get_task(metadata["task"]), tokenizer, metadata["hyperparameters"]["max_length"],
                         model_name=f"super-network '{directory}'", setting=f"max_length in {SUPERNET_FILE}",
                         fix="train the super-network again with --max-length", require_head=True)


def load_supernet(directory: str | Path, task: str | None = None, search_space: str | None = None,
                  model_type: str | None = None, device: str | None = None) -> Supernet:
    """Verify and load a super-network checkpoint (weights in float32, tokenizer, metadata); checks as
    ``verify_checkpoint`` and ``check_supernet_settings``."""
    directory = Path(directory)
    metadata = verify_checkpoint(directory, task, search_space, model_type)
    model_config = AutoConfig.from_pretrained(directory)
    tokenizer = load_tokenizer(str(directory), f"super-network '{directory}'", fix="copy the whole directory again")
    check_supernet_settings(directory, metadata, model_config, tokenizer)
    model = auto_class_of(model_config).from_pretrained(directory, dtype=torch.float32).eval()
    if device is not None:
        model.to(device)
    return Supernet(model, tokenizer, metadata, directory)
