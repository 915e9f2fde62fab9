"""How an encoder's token states become one sentence embedding: the pooling (``mean``, ``cls``, ``max``) and whether the
embedding is normalized to unit length, read from a sentence-transformers directory (``modules.json``,
``1_Pooling/config.json``) or given (``--pooling``), and written back next to every embedding model syne-prune saves,
so ``sentence_transformers.SentenceTransformer(DIR)`` loads it."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers.utils import ModelOutput

from syne_prune.errors import SynePruneError

POOLING_MODES = ("mean", "cls", "max")
"""``mean``: the average of the real tokens' states; ``cls``: the first token's state; ``max``: the element-wise maximum
over the real tokens."""
MODULES_FILE = "modules.json"
POOLING_DIR = "1_Pooling"
_ST_KEYS = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}
_TRANSFORMER, _POOLING, _NORMALIZE = (f"sentence_transformers.models.{n}" for n in ("Transformer", "Pooling", "Normalize"))


@dataclass(frozen=True)
class Pooling:
    """The pooling of an embedding model: ``mode`` (one of ``POOLING_MODES``) and ``normalize`` (unit length)."""

    mode: str = "mean"
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.mode not in POOLING_MODES:
            raise SynePruneError(f"unknown pooling '{self.mode}'; choose one of {', '.join(POOLING_MODES)}")

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "normalize": self.normalize}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "Pooling":
        return cls(str(record["mode"]), bool(record["normalize"]))


def read_pooling(directory: str | Path) -> Pooling | None:
    """The pooling a sentence-transformers directory declares (``modules.json`` and its Pooling module's
    ``config.json``; normalized when a Normalize module follows), or None when ``directory`` has no
    ``modules.json`` (a plain transformers model). Raises ``SynePruneError`` for a ``modules.json`` without a Pooling
    module, a pooling mode other than ``POOLING_MODES``, or files that are not valid JSON."""
    directory = Path(directory)
    modules_path = directory / MODULES_FILE
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path)
    types = [str(m.get("type", "")) for m in modules]
    pooling = next((m for m in modules if str(m.get("type", "")).endswith("Pooling")), None)
    if pooling is None:
        raise SynePruneError(f"{modules_path} names no Pooling module; pass --pooling {'|'.join(POOLING_MODES)}")
    config = _read_json(directory / pooling.get("path", POOLING_DIR) / "config.json")
    modes = [mode for mode, key in _ST_KEYS.items() if config.get(key)]
    if len(modes) != 1 or config.get("pooling_mode_mean_sqrt_len_tokens") or config.get("pooling_mode_weightedmean_tokens"):
        raise SynePruneError(f"{directory / pooling.get('path', POOLING_DIR)}/config.json asks for a pooling syne-prune does not "
                             f"compute; pass --pooling {'|'.join(POOLING_MODES)}")
    return Pooling(modes[0], any(t.endswith("Normalize") for t in types))


def resolve_pooling(model_dir: str | Path, pooling: str | None = None, normalize: bool = True) -> Pooling:
    """The pooling of the model ``model_dir``: ``pooling`` when given (with ``normalize``), else the one its
    sentence-transformers files declare. Raises ``SynePruneError`` when neither says: a model without those files needs
    ``--pooling``."""
    if pooling is not None:
        return Pooling(pooling, normalize)
    found = read_pooling(model_dir) if Path(model_dir).is_dir() else None
    if found is None:
        raise SynePruneError(f"model '{model_dir}' has no sentence-transformers pooling files ({MODULES_FILE}, "
                             f"{POOLING_DIR}/config.json); pass --pooling {'|'.join(POOLING_MODES)}")
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SynePruneError(f"{path} not found; copy the whole sentence-transformers directory, or pass --pooling") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SynePruneError(f"{path} is not valid JSON; copy the sentence-transformers directory again") from None


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Sentence embeddings [batch, hidden] from token states ``hidden`` [batch, tokens, hidden] and ``attention_mask``
    [batch, tokens] (1 for real tokens), as sentence-transformers' Pooling and Normalize modules compute them."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if pooling.mode == "cls":
        pooled = hidden[:, 0]
    elif pooling.mode == "max":
        pooled = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    else:
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=-1) if pooling.normalize else pooled


class EmbeddingModel(torch.nn.Module):
    """An encoder (a transformers base model, e.g. ``BertModel``) with its pooling: ``model(**inputs).logits`` is the
    sentence embedding [batch, hidden], so the super-network strategies and the training loop treat it as any model.
    A ``labels`` entry in the inputs is ignored. ``config`` is the encoder's (so ``syne_prune.export.export_onnx``
    exports encoder and pooling as one graph)."""

    def __init__(self, encoder: torch.nn.Module, pooling: Pooling) -> None:
        super().__init__()
        self.encoder, self.pooling = encoder, pooling
        self.config = encoder.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                **ignored: Any) -> ModelOutput:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs)[0]
        return ModelOutput(logits=pool(hidden, attention_mask, self.pooling))


def write_sentence_transformers_files(directory: str | Path, pooling: Pooling, hidden_size: int, max_seq_length: int) -> None:
    """Write the files by which ``SentenceTransformer(directory)`` loads the transformers model saved in ``directory``:
    ``modules.json`` (Transformer, Pooling, and Normalize when ``pooling.normalize``), ``1_Pooling/config.json`` and
    ``sentence_bert_config.json`` (``max_seq_length`` tokens)."""
    directory = Path(directory)
    modules = [{"idx": 0, "name": "0", "path": "", "type": _TRANSFORMER},
               {"idx": 1, "name": "1", "path": POOLING_DIR, "type": _POOLING}]
    if pooling.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": _NORMALIZE})
    (directory / MODULES_FILE).write_text(json.dumps(modules, indent=2) + "\n")
    (directory / POOLING_DIR).mkdir(exist_ok=True)
    config = {"word_embedding_dimension": hidden_size, **{key: mode == pooling.mode for mode, key in _ST_KEYS.items()},
              "pooling_mode_mean_sqrt_len_tokens": False}
    (directory / POOLING_DIR / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}, indent=2) + "\n")
