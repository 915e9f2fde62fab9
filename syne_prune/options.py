"""Command-line options read from the Python API: ``add_option`` takes an option's default and type from a
dataclass field or a keyword parameter, so that each default is written once, where the API defines it; the
command line (``syne_prune.cli``) and the plugins that bring their own options (the search's trial kinds and
backends) add their options with it."""
from __future__ import annotations

import argparse
import dataclasses
import inspect
from typing import Any, Callable

_TYPES = {"int": int, "float": float, "str": str}


def _api_parameters(source: type | Callable[..., Any]) -> dict[str, tuple[Any, str]]:
    """``{name: (default, annotation)}`` of the fields of a dataclass, or of the keyword parameters (keyword-only
    or with a default) of a function; ``default`` is None for a field or parameter without one."""
    if dataclasses.is_dataclass(source):
        parameters = {}
        for item in dataclasses.fields(source):
            default = item.default
            if default is dataclasses.MISSING:
                default = None if item.default_factory is dataclasses.MISSING else item.default_factory()
            parameters[item.name] = (default, _annotation(item.type))
        return parameters
    return {name: (None if p.default is p.empty else p.default, _annotation(p.annotation))
            for name, p in inspect.signature(source).parameters.items()
            if p.kind is p.KEYWORD_ONLY or (p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty)}


def _annotation(annotation: Any) -> str:
    """A type annotation as written (``"int | None"``), whether or not its module postpones annotations."""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


# The help of options that several commands share, written once; a command passes its own help where it means more.
COMMON_HELP = {
    "lr": "AdamW learning rate, linear decay",
    "batch_size": "training examples per step",
    "max_length": "tokens per example (longer ones are truncated)",
    "validation_fraction": "share of train held out for validation",
    "max_train_examples": "cap on training examples (quick runs)",
    "max_eval_examples": "cap on validation and test examples (quick runs)",
    "eval_batch_size": "examples per evaluation batch",
    "resume": "continue a killed run from its last finished epoch",
    "overwrite": "replace an existing --output",
}


def add_option(parser: Any, source: type | Callable[..., Any], name: str, help: str | None = None, *, flag: str | None = None,
               **kwargs: Any) -> argparse.Action:
    """Add the option ``flag`` (default ``--NAME`` with dashes) for the field or keyword parameter ``name`` of
    ``source`` (a dataclass or a function of the API) to ``parser`` (a parser or an argument group), with
    ``dest=name`` and, unless given in ``kwargs``, the API's default and the type of its annotation: a ``bool``
    becomes a flag, a tuple default (``("error", "params")``) a comma-separated string. Raises KeyError when
    ``source`` has no such field: a renamed field fails the parser's tests instead of being dropped silently, and
    when ``help`` is left out for an option without a ``COMMON_HELP`` entry."""
    default, annotation = _api_parameters(source)[name]
    base = annotation.replace(" ", "").replace("|None", "").replace("None|", "")
    kwargs.setdefault("dest", name)
    if base == "bool":
        kwargs.setdefault("action", "store_true")
    else:
        kwargs.setdefault("default", ",".join(map(str, default)) if isinstance(default, tuple) else default)
        if _TYPES.get(base) not in (None, str):
            kwargs.setdefault("type", _TYPES[base])
    return parser.add_argument(flag or f"--{name.replace('_', '-')}", help=COMMON_HELP[name] if help is None else help, **kwargs)


def api_kwargs(source: type | Callable[..., Any], args: argparse.Namespace, **values: Any) -> dict[str, Any]:
    """The keyword arguments of ``source`` (a dataclass or an API function) read from the parsed ``args``:
    every field or keyword parameter that ``args`` holds (its ``dest`` is the field's name), then ``values``."""
    return {name: getattr(args, name) for name in _api_parameters(source) if hasattr(args, name)} | values


def comma_list(text: str) -> tuple[str, ...]:
    """``"error, params,"`` -> ``("error", "params")``: a comma-separated option as the API's tuple."""
    return tuple(item.strip() for item in text.split(",") if item.strip())
