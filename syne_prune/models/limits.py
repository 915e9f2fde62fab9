"""Settings a model cannot honour, found before any work: one reusable check for every command.

``check_model_settings`` compares what a run will feed a model with what the model's config allows:

- sequence length: ``max_length`` tokens need that many position embeddings. BERT, DistilBERT and ELECTRA
  use ``max_position_embeddings``; RoBERTa (and XLM-RoBERTa) numbers positions from ``pad_token_id + 1`` (positions up to the
  padding index are reserved), so it takes at most ``max_position_embeddings - pad_token_id - 1`` tokens
  (514 - 1 - 1 = 512 for roberta-base). DeBERTa-v2/v3 with ``position_biased_input`` false (DeBERTa-v3)
  has no absolute position embeddings (relative positions are bucketed and clamped): no limit. A ``max_length`` no larger than the special tokens the tokenizer
  adds leaves no room for text, and the tokenizer then ignores the limit altogether (it returns the
  untruncated sequence), so that is refused too. Multiple choice truncates every (context, ending) pair
  to ``max_length``: the same limits hold per choice.
- type vocabulary: for sentence-pair tasks (and multiple choice, whose choices are pairs) the tokenizer
  marks the second text with token type 1; a model with ``type_vocab_size`` 1 has no embedding for it.
  DeBERTa with ``type_vocab_size`` 0 (DeBERTa-v3) has no token type embeddings and ignores the ids.
- vocabulary: every token id the tokenizer can emit must have a row in the embedding matrix.
- task head (``require_head``, for a trained checkpoint such as a super-network): a classifier with the
  task's label count, or a multiple-choice head for a multiple-choice task.

dtype is not checked here: syne-prune loads every model it trains or evaluates in float32
(``load_task_model``, ``load_model``, ``load_supernet``), whatever dtype it was saved in, because float16
training without loss scaling overflows (NaN losses and weights).

Each violation is a one-line ``SynePruneError`` naming the limit and the fix (the CLI exits with code 2).
Nothing is clamped: a run never silently uses other settings than the ones asked for.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import PretrainedConfig

from syne_prune.errors import SynePruneError
from syne_prune.models.architectures import family_of_any
from syne_prune.models.loading import auto_class_of

# Model types whose absolute position embeddings a config flag can switch off (then no length limit).
HAS_POSITION_EMBEDDINGS: dict[str, Callable[[PretrainedConfig], bool]] = {
    "deberta-v2": lambda config: getattr(config, "position_biased_input", True),
    "syne_prune_deberta_v2": lambda config: getattr(config, "position_biased_input", True),
}
# Model types that have no token type embeddings, and ignore token type ids, when type_vocab_size is 0.
TOKEN_TYPES_OPTIONAL = {"deberta-v2", "syne_prune_deberta_v2"}


def usable_positions(config: PretrainedConfig) -> int | None:
    """The most tokens per sequence ``config``'s position embeddings can encode (None: no such limit);
    ``Family.reserved_positions`` says how many are reserved (RoBERTa, XLM-RoBERTa: pad_token_id + 1)."""
    total = getattr(config, "max_position_embeddings", None)
    if total is None or not HAS_POSITION_EMBEDDINGS.get(getattr(config, "model_type", ""), lambda _: True)(config):
        return None
    family = family_of_any(config)
    return total - (family.reserved_positions(config) if family is not None else 0)


def _positions_detail(config: PretrainedConfig) -> str:
    total, usable = config.max_position_embeddings, usable_positions(config)
    if usable == total:
        return f"max_position_embeddings {total}"
    return f"max_position_embeddings {total} less pad_token_id + 1 = {total - usable} reserved by {config.model_type}"


def _is_pair(task) -> bool:
    return task.is_multiple_choice or len(task.text_columns) >= 2


def _check_length(config, task, tokenizer, max_length, where) -> str | None:
    if max_length is None:
        return None
    setting, fix = where
    usable = usable_positions(config)
    if usable is not None and max_length > usable:
        return (f"{setting} {max_length} is more than the {usable} token positions of {{model}} "
                f"({_positions_detail(config)}); {fix} {usable} or less")
    if tokenizer is not None and task is not None:
        special = tokenizer.num_special_tokens_to_add(pair=_is_pair(task))
        if max_length <= special:
            kind = "sentence pair" if _is_pair(task) else "sentence"
            return (f"{setting} {max_length} leaves no room for text: the tokenizer of {{model}} adds {special} special "
                    f"tokens to every {kind} (and then ignores the limit); {fix} {special + 1} or more")
    return None


def _check_token_types(config, task, tokenizer, max_length, where) -> str | None:
    type_vocab = getattr(config, "type_vocab_size", None)
    if tokenizer is None or task is None or type_vocab is None or not _is_pair(task):
        return None
    if type_vocab == 0 and getattr(config, "model_type", "") in TOKEN_TYPES_OPTIONAL:
        return None
    probe = tokenizer("a", "b")
    types = probe.get("token_type_ids")
    if not types:
        return None
    needed = max(types) + 1
    if needed > type_vocab:
        return (f"task '{task.name}' gives sentence pairs, whose second text the tokenizer marks with token type "
                f"{needed - 1}, but {{model}} has type_vocab_size {type_vocab}; use a model with type_vocab_size "
                f">= {needed} (e.g. a BERT checkpoint) or a tokenizer that returns no token_type_ids, or a single-sentence task")
    return None


def _check_vocabulary(config, task, tokenizer, max_length, where) -> str | None:
    vocab = getattr(config, "vocab_size", None)
    if tokenizer is None or vocab is None or len(tokenizer) <= vocab:
        return None
    return (f"the tokenizer has {len(tokenizer)} tokens but {{model}} embeds only vocab_size {vocab}; "
            f"use the tokenizer saved with the model")


CHECKS: tuple[Callable[..., str | None], ...] = (_check_length, _check_token_types, _check_vocabulary)


def _check_head(config: PretrainedConfig, task) -> str | None:
    head, want = auto_class_of(config).__name__, task.type.auto_class
    if head != want:
        if want == "AutoModelForMultipleChoice":
            return f"task '{task.name}' is multiple choice but {{model}} has no multiple-choice head; train it for {task.name}"
        return f"{{model}} has no {want[len('AutoModelFor'):]} head for task '{task.name}'; train it for {task.name}"
    if task.type.head_labels(task.num_labels) and config.num_labels != task.num_labels:
        return (f"{{model}} has a head with {config.num_labels} label(s) but task '{task.name}' needs {task.num_labels}; "
                f"train it for {task.name}")
    return None


def check_model_settings(
    config: PretrainedConfig,
    task: Any = None,
    tokenizer: Any = None,
    max_length: int | None = None,
    *,
    model_name: str = "the model",
    setting: str = "--max-length",
    fix: str | None = None,
    require_head: bool = False,
) -> None:
    """Raise a one-line ``SynePruneError`` when ``config``'s model cannot run the given settings.

    In: the model's config; the ``syne_prune.data.Task`` (or None); its tokenizer (or None: the checks
    that need it are skipped); ``max_length`` in tokens per sequence (per choice for multiple choice;
    None: not checked). ``setting`` names where ``max_length`` comes from and ``fix`` how to change it
    (default ``"pass {setting}"``; the message ends with "<fix> <limit> or less" / "or more"). ``require_head``: the
    model is a trained checkpoint whose head must fit ``task`` (label count, multiple choice).
    Call it before anything is loaded at full size or written. Returns nothing.
    """
    where = (setting, fix or f"pass {setting}")
    problems = [check(config, task, tokenizer, max_length, where) for check in CHECKS]
    if require_head and task is not None:
        problems.append(_check_head(config, task))
    problem = next((p for p in problems if p), None)
    if problem:
        raise SynePruneError(problem.replace("{model}", model_name))
