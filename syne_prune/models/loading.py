"""Loading a model from a directory or hub id: its config (``load_model_config``), the model with the task head
its checkpoint has (``load_model``) or with a task's head (``load_task_model``), its tokenizer (``load_tokenizer``),
and its weight files checked before any work (``check_model_files``). Every problem is a one-line
``SynePruneError`` that tells apart a missing model or tokenizer, a tokenizer that needs a package this environment
lacks (named, with its pip command), and a broken file (named). Hub ids that a package carries
(``local_weights``) load from that package.

Commands call these before they create their output, so a model that cannot be loaded never leaves an
empty output directory behind nor starts trials that would all fail."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import torch
import transformers
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModel, AutoTokenizer, PretrainedConfig, PreTrainedModel

from syne_prune.errors import SynePruneError
from syne_prune.models.architectures import TASK_HEADS, get_family
from syne_prune.models.local_weights import resolve_model
from syne_prune.numerics import WEIGHTS_FIX, require_finite_safetensors, require_finite_weights

# Files a saved tokenizer consists of (any of them means "a tokenizer is there").
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json", "merges.txt",
                   "added_tokens.json")
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "added_tokens.json")
# SentencePiece model files (``*.model``: DeBERTa-v3's spm.model, XLM-RoBERTa's sentencepiece.bpe.model, ...): without
# tokenizer.json, only the sentencepiece package reads them.
SENTENCEPIECE_PACKAGE = "sentencepiece"
NO_TOKENIZER_FIX = "save one next to the model (tokenizer.save_pretrained)"
_PACKAGE_IN_MESSAGE = (re.compile(r"requires the (\w+) library", re.I), re.compile(r"No module named '([\w.]+)'"),
                       re.compile(r"pip install ([\w-]+)"))


def tokenizer_files(directory: Path) -> list[Path]:
    """The tokenizer files in ``directory``: those of ``TOKENIZER_FILES`` and SentencePiece ``*.model`` files."""
    return [directory / n for n in TOKENIZER_FILES if (directory / n).is_file()] + sorted(directory.glob("*.model"))


def auto_class_of(config: PretrainedConfig) -> type:
    """The Auto class that loads a checkpoint with this config: its task head's, else ``AutoModel``."""
    for auto_name, suffix in TASK_HEADS.items():
        if any(a.endswith(suffix) for a in (getattr(config, "architectures", None) or [])):
            return getattr(transformers, auto_name)
    return AutoModel


def load_model_config(name_or_path: str) -> PretrainedConfig:
    """The config of a supported stock model (a directory or hub id); a missing model, another architecture, a
    pruned export and a config the family's stock class cannot load are each a one-line ``SynePruneError``."""
    name_or_path = resolve_model(name_or_path)
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise SynePruneError(
            f"cannot load model '{name_or_path}' ({_first_line(error)}); give a local directory with "
            f"config.json and weights, or a Hugging Face hub id when the hub is reachable"
        ) from None
    problem = get_family(config).problem_to_load(config)
    if problem:
        raise SynePruneError(problem)
    return config


def load_model(name_or_path: str) -> PreTrainedModel:
    """A supported stock model (a directory or hub id) with the task head its checkpoint has (its config names a
    *ForSequenceClassification or *ForMultipleChoice architecture), else the base model; in eval mode and float32
    (the dtype syne-prune evaluates and exports in, whatever the checkpoint was saved in). A local directory's weight
    files are checked first (``check_model_files``: a missing shard or a truncated file is a one-line error naming
    it); weights that do not load, or are NaN or infinite, are a one-line ``SynePruneError``."""
    config = load_model_config(name_or_path)
    name_or_path = resolve_model(name_or_path)
    check_model_files(name_or_path, f"model '{name_or_path}'", "export a model with finite weights")
    try:
        model = auto_class_of(config).from_pretrained(name_or_path, dtype=torch.float32).eval()
    except Exception as error:  # noqa: BLE001 - safetensors, torch and transformers raise many kinds
        raise SynePruneError(f"cannot load the weights of '{name_or_path}' ({_first_line(error)}); check the directory") from None
    require_finite_weights(model, f"model '{name_or_path}'", "export a model with finite weights")
    return model


def load_task_model(source: str, task, **kwargs) -> PreTrainedModel:
    """Pre-trained weights from ``source`` with ``task``'s head (a ``syne_prune.data`` task: its type's Auto class
    and ``model_kwargs``, the user's label names as ``id2label``; the head is new where the checkpoint has none or
    another); ``kwargs`` go to ``from_pretrained``.

    Loaded in float32 whatever dtype the checkpoint was saved in (training float16 weights without loss
    scaling overflows to NaN); pass ``dtype`` to override. Weights that are already NaN or infinite are a
    one-line ``SynePruneError``."""
    kwargs.setdefault("dtype", torch.float32)
    names = task.label_values if task.spec is not None else ()  # the user's class names travel with every model made from it
    kwargs = {**task.type.model_kwargs(task.num_labels, names), **kwargs}
    model = getattr(transformers, task.type.auto_class).from_pretrained(source, ignore_mismatched_sizes=True, **kwargs)
    require_finite_weights(model, f"model '{source}'", "use a checkpoint with finite weights")
    return model


def load_tokenizer(name_or_path: str, what: str | None = None, required: bool = True, fix: str = NO_TOKENIZER_FIX) -> Any:
    """The tokenizer saved with the model ``name_or_path`` (a local directory, or a hub id), loaded with
    ``AutoTokenizer``; ``what`` names the model in messages (default ``model 'NAME'``).

    Returns None when the directory has no tokenizer files and not ``required``. Raises ``SynePruneError``:
    "WHAT has no tokenizer; FIX" (none there and ``required``); "the tokenizer of WHAT (FILE) needs the PACKAGE
    package, which is not installed; pip install PACKAGE"; "the tokenizer of WHAT is broken: FILE ..." (a file
    that does not parse, or a tokenizer without its vocabulary)."""
    what = what or f"model '{name_or_path}'"
    name_or_path = resolve_model(name_or_path)
    directory = Path(name_or_path)
    files = tokenizer_files(directory) if directory.is_dir() else []
    if directory.is_dir():
        if not files:
            if required:
                raise SynePruneError(f"{what} has no tokenizer; {fix}")
            return None
        _check_json(files, what)
        sentencepiece = [f for f in files if f.suffix == ".model"]
        if sentencepiece and not (directory / "tokenizer.json").is_file() and importlib.util.find_spec(SENTENCEPIECE_PACKAGE) is None:
            raise _needs_package(what, sentencepiece[0], SENTENCEPIECE_PACKAGE)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except Exception as error:  # noqa: BLE001 - transformers raises OSError, ValueError, TypeError, ImportError, ...
        raise _load_failure(error, name_or_path, what, files, required, fix) from None
    if files and len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        raise SynePruneError(f"the tokenizer of {what} is broken: {directory / 'tokenizer_config.json'} names "
                             f"{type(tokenizer).__name__} but its vocabulary file is missing or empty (only {len(tokenizer)} special "
                             f"tokens); save the tokenizer again (tokenizer.save_pretrained)")
    return tokenizer


def _check_json(files: list[Path], what: str) -> None:
    for path in files:
        if path.name in JSON_FILES:
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                detail = f"{error.msg} at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else "not UTF-8 text"
                raise SynePruneError(f"the tokenizer of {what} is broken: {path} is not valid JSON ({detail}); save the "
                                     f"tokenizer again (tokenizer.save_pretrained) or copy the file again") from None


def _needs_package(what: str, file: Path | str, package: str) -> SynePruneError:
    return SynePruneError(f"the tokenizer of {what} ({file}) needs the {package} package, which is not installed; "
                          f"pip install {package}")


def _load_failure(error: Exception, name: str, what: str, files: list[Path], required: bool, fix: str) -> SynePruneError:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    package = next((m.group(1) for pattern in _PACKAGE_IN_MESSAGE for m in [pattern.search(text)] if m), None)
    if isinstance(error, ImportError) or package is not None:
        package = (package or getattr(error, "name", None) or "the missing").lower()
        return _needs_package(what, next((f for f in files if f.name in text), files[0] if files else name), package)
    if not files:  # a hub id
        return SynePruneError(f"cannot load the tokenizer of {what} ({first}); give a local directory with the model and its "
                              "tokenizer, or a hub id when the hub is reachable")
    named = next((f for f in files if f.name in text), files[0])
    return SynePruneError(f"the tokenizer of {what} is broken: {named} cannot be read ({first}); save the tokenizer again "
                          f"(tokenizer.save_pretrained) or copy the file again")


def check_model_files(source: str | Path, what: str, fix: str = WEIGHTS_FIX) -> None:
    """For a local model directory ``source``: ``config.json`` and a weight index are valid JSON, every shard the
    index names is there, and every safetensors file reads whole and holds only finite numbers (``fix`` is the
    advice for non-finite ones). A hub id is left to loading. Raises ``SynePruneError``: "cannot load the
    weights of WHAT: FILE ...; copy the model directory again" naming the file, or the non-finite weights."""
    directory = Path(source)
    if not directory.is_dir():
        return
    again = "copy the model directory again (or save the model again)"
    for name in ("config.json", "model.safetensors.index.json", "pytorch_model.bin.index.json"):
        path = directory / name
        try:
            if path.is_file():
                json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SynePruneError(f"cannot load the weights of {what}: {path} is not valid JSON; {again}") from None
    files = sorted(directory.glob("*.safetensors"))
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards:
            raise SynePruneError(f"cannot load the weights of {what}: {index} names no shard (no weight_map); {again}")
        missing = [s for s in shards if not (directory / s).is_file()]
        if missing:
            raise SynePruneError(f"cannot load the weights of {what}: {directory / missing[0]}, a shard named in {index.name}, is missing "
                                 f"({len(missing)} of {len(shards)} shards); {again}")
        files = [directory / s for s in shards]
    if not files and not any(directory.glob("pytorch_model*.bin")):
        raise SynePruneError(f"cannot load the weights of {what}: {directory} has no weight file (model.safetensors); {again}")
    for path in files:
        try:
            require_finite_safetensors([path], what, fix)
        except (SafetensorError, OSError) as error:
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SynePruneError(f"cannot load the weights of {what}: {path} is truncated or damaged ({detail}); {again}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
