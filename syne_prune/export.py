"""Write a sub-network as a physically smaller model that ``from_pretrained`` loads.

A directory gets safetensors weights, ``config.json``, the tokenizer (when given), ``syne_prune.json`` (what was
pruned and how big it is) and a model card, ``README.md`` (``model_card.py``). A sub-network that keeps every head
and one FFN width in every kept layer, with no removed block, gets a stock transformers config; any
other gets a pruned config class whose modeling code travels in the directory (``modeling_syne_prune.py``,
which imports the family's module, e.g. ``bert.py``, copied along with ``family.py`` and ``shape.py``;
torch and transformers only), so it loads either way (``syne_prune.models.load_model`` loads it too):

    import syne_prune                      # registers the classes with the Auto classes
    AutoModelForSequenceClassification.from_pretrained(out)
    # or, without syne_prune installed (the tokenizer too: AutoTokenizer reads config.json, whose
    # auto_map names the modeling file, and without the flag asks whether to run it):
    AutoModelForSequenceClassification.from_pretrained(out, trust_remote_code=True)
    AutoTokenizer.from_pretrained(out, trust_remote_code=True)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel

from syne_prune.artifacts import EXPORT_FILE, write_json
from syne_prune.errors import SynePruneError
from syne_prune.files import refuse_existing, writing
from syne_prune.masks import SubnetMask
from syne_prune.model_card import check_replaceable, write_model_card
from syne_prune.models import PRUNED_CLASSES, TASK_HEADS, head_of, usable_positions
from syne_prune.numerics import require_finite_weights
from syne_prune.objectives import subnet_size
from syne_prune.surgery import extract_subnetwork
from syne_prune.versions import software_versions

ONNX_OPSET = 18
ONNX_TOLERANCE = 1e-4
ONNX_EXAMPLE_LENGTH = 16  # tokens per sequence of the example the exporter traces (the check uses 11)


def export_subnetwork(
    model: PreTrainedModel,
    mask: SubnetMask,
    output_dir: str | Path,
    tokenizer: Any = None,
    onnx: bool = False,
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
    subnetwork: PreTrainedModel | None = None,
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Extract ``mask`` from ``model`` and write it to ``output_dir``; returns the directory.

    ``subnetwork``: write this already extracted (and since fine-tuned, as in standard NAS) sub-network
    of ``model`` and ``mask`` instead of extracting it. ``extra_files``: called with the staging directory to add
    files of its own (an embedding model's sentence-transformers files) before it is moved into place.

    The directory is written under a temporary name and moved into place only when complete, so a
    failure leaves no half-written export and never touches an existing one. Weights with NaN or inf
    entries, and (``onnx``) a model with fewer positions than the ONNX example, are a ``SynePruneError``
    before anything is written.
    """
    output_dir = Path(output_dir)
    refuse_existing(output_dir, overwrite)
    sub = (subnetwork if subnetwork is not None else extract_subnetwork(model, mask, share_weights=False)).eval()
    return _write_directory(sub, output_dir, tokenizer, onnx, lambda path: _write_metadata(path, model, mask, metadata), extra_files)


def save_export(sub: PreTrainedModel, output_dir: str | Path, record: dict[str, Any], tokenizer: Any = None, onnx: bool = False,
                overwrite: bool = False, extra_files: Callable[[Path], None] | None = None) -> Path:
    """Write an already pruned model (e.g. a recovered export, ``recovery.py``) in the export format, with
    ``record`` as its ``syne_prune.json``; returns the directory. Same guarantees as ``export_subnetwork``:
    complete or absent, an existing ``output_dir`` replaced only with ``overwrite``."""
    output_dir = Path(output_dir)
    refuse_existing(output_dir, overwrite)
    return _write_directory(sub.eval(), output_dir, tokenizer, onnx, lambda path: write_json(path, record), extra_files)


def _write_directory(sub: PreTrainedModel, output_dir: Path, tokenizer: Any, onnx: bool, write_record, extra_files=None) -> Path:
    """Write ``sub`` under a temporary name, then move it into place (replacing ``output_dir``). Raises
    SynePruneError, before anything is written, for non-finite weights, an ONNX export the positions cannot hold, or an
    ``output_dir`` holding a README.md that syne-prune did not write (``model_card.check_replaceable``)."""
    positions = usable_positions(sub.config)
    if onnx and positions is not None and positions < ONNX_EXAMPLE_LENGTH:
        raise SynePruneError(f"the ONNX export traces {ONNX_EXAMPLE_LENGTH}-token examples but the model has only {positions} "
                             "token positions; drop --onnx")
    require_finite_weights(sub, "the sub-network to export", "export from a model with finite weights")
    check_replaceable(output_dir)
    with writing(output_dir):  # a failed write: one line naming the path and the cause; the staging copy is removed below
        return _write_staged(sub, output_dir, tokenizer, onnx, write_record, extra_files)


def _write_staged(sub: PreTrainedModel, output_dir: Path, tokenizer: Any, onnx: bool, write_record, extra_files=None) -> Path:
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes 0700; the export should look like any new directory
    try:
        sub.save_pretrained(staging)
        if sub.config.model_type in PRUNED_CLASSES:
            _complete_auto_map(staging / "config.json")
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        if onnx:
            export_onnx(sub, staging / "model.onnx")
        if extra_files is not None:
            extra_files(staging)
        write_record(staging / EXPORT_FILE)
        write_model_card(staging, output_dir)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def training_data_record(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What an export records of the task it was trained on, from super-network or standard-NAS settings
    (``task``, ``data_dir``, ``validation_fraction``, ``seed``, ``max_length``): recovery trains on the
    same split. ``data_dir`` is made absolute so the record holds from any working directory."""
    data_dir = settings.get("data_dir") or None
    return {"task": settings["task"], "data": {
        "data_dir": str(Path(data_dir).resolve()) if data_dir and Path(data_dir).is_dir() else data_dir,
        "validation_fraction": settings.get("validation_fraction", 0.3), "seed": settings.get("seed", 0),
        "max_length": settings.get("max_length", 128)}}


MODELING_FILE = "modeling_syne_prune.py"


def _complete_auto_map(config_path: Path) -> None:
    """save_pretrained maps only the saved class, to the family module it copied (e.g. ``bert.py``). Write
    ``modeling_syne_prune.py`` importing the pruned classes from it, and map AutoConfig, AutoModel and every
    task head to that file."""
    config = json.loads(config_path.read_text())
    family_module, config_class = config["auto_map"]["AutoConfig"].split(".")
    stem = config_class.removesuffix("Config")
    classes = {"AutoConfig": config_class, "AutoModel": f"{stem}Model", **{auto: f"{stem}{suffix}" for auto, suffix in TASK_HEADS.items()}}
    module = MODELING_FILE.removesuffix(".py")
    (config_path.parent / MODELING_FILE).write_text(
        f'"""The pruned {stem.removeprefix("Pruned")} classes of this syne-prune export (torch and transformers only)."""\n'
        f"from .{family_module} import {', '.join(sorted(set(classes.values())))}  # noqa: F401\n")
    config["auto_map"] = {auto: f"{module}.{name}" for auto, name in classes.items()}
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _write_metadata(path: Path, model: PreTrainedModel, mask: SubnetMask, extra: dict[str, Any] | None) -> None:
    size, full = subnet_size(model, mask), subnet_size(model)
    record = {
        "source_model": getattr(model.config, "_name_or_path", ""),
        "heads_per_layer": mask.heads_per_layer,
        "neurons_per_layer": mask.neurons_per_layer,
        "kept_layers": mask.kept_layers,
        "params": size.params,
        "encoder_params": size.encoder_params,
        "params_ratio": size.params / full.params,
        "encoder_params_ratio": size.encoder_params / full.encoder_params,
        f"macs_per_sequence_{size.seq_len}": size.macs,
        "macs_ratio": size.macs / full.macs,
        "versions": software_versions(),
        **(extra or {}),
    }
    write_json(path, record)


def onnx_input_names(config: PretrainedConfig) -> tuple[str, ...]:
    """The inputs of an exported ``model.onnx``: ``input_ids`` and ``attention_mask`` (int64, batch x tokens),
    plus ``token_type_ids`` where the model has more than one token type (``type_vocab_size`` > 1: BERT, ELECTRA,
    DeBERTa-v2), so sentence pairs get the segment embeddings the PyTorch model gives them."""
    names = ("input_ids", "attention_mask")
    return names + ("token_type_ids",) if (getattr(config, "type_vocab_size", 0) or 0) > 1 else names


class _FirstOutput(torch.nn.Module):
    """The model's first output (logits, or the last hidden state of a base model) from positional inputs."""

    def __init__(self, model: PreTrainedModel, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(**{name: inputs[name] for name in self.names})[0]


def _onnx_example(vocab: int, batch: int, length: int, padded_from: int) -> dict[str, torch.Tensor]:
    """Random token ids with the first row padded from ``padded_from`` on, and token type 1 on the second half of
    every row (a sentence pair)."""
    input_ids = torch.randint(5, vocab, (batch, length))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, padded_from:] = 0
    token_type_ids = (torch.arange(length) >= length // 2).long().expand(batch, length).contiguous()
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def export_onnx(model: PreTrainedModel, path: Path, opset: int = ONNX_OPSET) -> float:
    """Write ``model`` as ONNX (dynamic batch and sequence length) and check it against PyTorch.

    Inputs are ``onnx_input_names(model.config)``; the output is the logits (or a base model's hidden states).
    Uses torch's dynamo exporter: the TorchScript exporter bakes the example's attention mask into
    the graph and gives wrong outputs on padded batches. Returns the max abs difference found on a padded
    3 x 11 check batch (hidden states at its real tokens only: a padded query may have no key to attend to,
    e.g. in ModernBERT's local layers, and its output is then undefined). Raises SynePruneError for a
    multiple-choice model, a missing onnxruntime, non-finite PyTorch outputs or a difference above 1e-4.
    """
    if head_of(model) == "AutoModelForMultipleChoice":
        raise SynePruneError("ONNX export supports base, sequence- and token-classification models, not multiple choice; drop --onnx")
    try:
        import onnxruntime  # optional: syne-prune[onnx]
    except ImportError:
        raise SynePruneError("ONNX export needs onnx and onnxruntime: pip install 'syne-prune[onnx]'") from None
    names = onnx_input_names(model.config)
    example = _onnx_example(model.config.vocab_size, 2, ONNX_EXAMPLE_LENGTH, 10)
    check = _onnx_example(model.config.vocab_size, 3, 11, 6)
    with torch.inference_mode():
        want = model(**{name: check[name] for name in names})[0].numpy()
    real = check["attention_mask"].bool().numpy()
    if want.ndim == 3:  # hidden states: only real tokens' are defined (a padded query's attention may be all masked)
        want = want[real]
    onnx_difference(want, want)  # a NaN or inf PyTorch output fails here, before the (slow) export
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # the exporter logs every op registration it skips
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _FirstOutput(model, names).eval(),
                tuple(example[name] for name in names),
                str(path),
                input_names=list(names),
                output_names=["output"],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                dynamic_shapes=tuple({0: batch, 1: seq} for _ in names),
                verbose=False,
            )
    finally:
        onnx_logger.setLevel(level)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: check[name].numpy() for name in names})[0]
    if got.ndim == 3:
        got = got[real]
    return onnx_difference(got, want)


def onnx_difference(got: np.ndarray, want: np.ndarray, tolerance: float = ONNX_TOLERANCE) -> float:
    """Max abs difference of the ONNX output ``got`` from the PyTorch output ``want`` (same shape).

    Raises ``SynePruneError`` when ``want`` holds NaN or inf, or the difference is not at most
    ``tolerance`` (NaN anywhere in ``got`` fails: NaN compares False)."""
    if not np.isfinite(want).all():
        raise SynePruneError("the model's PyTorch output is NaN or inf on the ONNX check input; export a model with finite outputs")
    difference = float(np.abs(got - want).max())
    if not difference <= tolerance:  # NaN fails too
        raise SynePruneError(f"ONNX output differs from PyTorch by {difference:.2e} (not <= {tolerance}); report this as a bug")
    return difference

