"""Non-finite numbers (NaN, +-inf) never pass silently: a loss, a metric, a trial result, a weight tensor
or a model output that is not finite stops the work with a one-line ``SynePruneError``.

NaN compares False with everything, so a check such as ``difference > tolerance`` or a dominance test
lets it through; these helpers test finiteness explicitly.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from syne_prune.errors import SynePruneError

LOSS_FIX = "lower --lr, or check the data and the model's weights for extreme values"
WEIGHTS_FIX = "train it again (syne-prune trains in float32; lower --lr if the loss diverges)"


def require_finite(value: Any, what: str, fix: str = LOSS_FIX) -> float:
    """``value`` (a Python, numpy or one-element torch number) as a float.

    Raises ``SynePruneError`` ("<what> is nan; <fix>") when it is NaN or +-inf."""
    number = float(value)
    if not math.isfinite(number):
        raise SynePruneError(f"{what} is {number}; {fix}")
    return number


def non_finite_items(values: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """``name=value`` for each of ``names`` in ``values`` whose value is not a finite number
    (missing names are skipped; values that are not numbers count as non-finite)."""
    bad = []
    for name in names:
        if name not in values:
            continue
        try:
            finite = math.isfinite(float(values[name]))
        except (TypeError, ValueError):
            finite = False
        if not finite:
            bad.append(f"{name}={values[name]}")
    return bad


def non_finite_tensors(tensors: Iterable[tuple[str, Any]]) -> tuple[list[str], int]:
    """Names of the floating-point torch tensors with a NaN or +-inf entry, and how many tensors were checked."""
    bad, checked = [], 0
    for name, tensor in tensors:
        if not tensor.is_floating_point():
            continue
        checked += 1
        if not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    return bad, checked


def require_finite_weights(model, what: str, fix: str = WEIGHTS_FIX) -> None:
    """Raise ``SynePruneError`` when any floating-point tensor of ``model`` (an ``nn.Module``) holds NaN or
    +-inf: "<what> has non-finite weights in K of N tensors (e.g. NAME); <fix>"."""
    bad, checked = non_finite_tensors(model.state_dict().items())
    if bad:
        raise SynePruneError(f"{what} has non-finite weights in {len(bad)} of {checked} tensors (e.g. {bad[0]}); {fix}")


def require_finite_result(result: dict[str, Any], what: str = "the trial's result") -> dict[str, Any]:
    """``result`` unchanged when every number in it (objectives, fidelity, times) is finite; else a
    ``SynePruneError`` naming the values, so the trial fails with that reason instead of reporting them."""
    bad = non_finite_items(result, [k for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)])
    if bad:
        raise SynePruneError(f"{what} is not finite ({', '.join(bad)}); the sub-network's weights or outputs are broken")
    return result


def require_finite_safetensors(files: Iterable[Any], what: str, fix: str = WEIGHTS_FIX) -> None:
    """Every floating-point tensor in the safetensors ``files`` (paths) is finite, read one tensor at a time
    (no model is built); else ``SynePruneError`` as ``require_finite_weights``. Use it before any output
    is written, on a checkpoint that will be loaded later."""
    bad, checked = [], 0
    for path in files:
        with safe_open(str(path), framework="pt") as handle:
            found, count = non_finite_tensors((key, handle.get_tensor(key)) for key in handle.keys())
        bad, checked = bad + found, checked + count
    if bad:
        raise SynePruneError(f"{what} has non-finite weights in {len(bad)} of {checked} tensors (e.g. {bad[0]}); {fix}")


def require_finite_model_dir(source: Any, what: str, fix: str = "use a checkpoint with finite weights") -> None:
    """``require_finite_safetensors`` on the ``*.safetensors`` files of ``source`` when it is a local
    directory (a hub id is checked when loaded, by ``load_task_model``)."""
    if Path(source).is_dir():
        require_finite_safetensors(sorted(Path(source).glob("*.safetensors")), what, fix)
