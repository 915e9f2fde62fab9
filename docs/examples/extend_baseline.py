"""Extending syne-prune with a pruning baseline: ``uniform``, the widest uniform shape (the same first k heads and
first u FFN neurons in every layer) that meets the budget, no fine-tuning. In the package: a module
``syne_prune/baselines/uniform.py`` with its ``METHOD`` and one name in the tuple of ``syne_prune/baselines/methods.py``;
here it is registered in-process and ``prune`` runs it on a tiny classifier, exactly as ``syne-prune prune --method
uniform`` would."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# --8<-- [start:method]
from syne_prune.baselines import METHODS, Budget, Method, PruneContext, Pruned
from syne_prune.masks import SubnetMask


def uniform_mask(ctx: PruneContext, keep: float) -> SubnetMask:
    """The first ``keep`` share of the heads and of the FFN neurons in every layer."""
    s = ctx.shape
    heads, neurons = round(keep * s.num_heads), round(keep * s.num_neurons)
    return SubnetMask.from_counts([heads] * s.num_layers, [neurons] * s.num_layers, s.num_heads, s.num_neurons)


def run(ctx: PruneContext, budget: Budget) -> Pruned:
    """The widest uniform shape (in steps of 1% of the width) that meets ``budget``."""
    keep = next(k / 100 for k in range(100, -1, -1) if ctx.fits(uniform_mask(ctx, k / 100), budget))
    return Pruned(uniform_mask(ctx, keep), None, {"kept_share": keep})


METHOD = Method("uniform", run, smallest=lambda ctx: uniform_mask(ctx, 0.0), finetune_epochs=0,
                summary="uniform shrinking: the same first heads and neurons in every layer")
METHODS[METHOD.name] = METHOD  # in the package: one name in the tuple of baselines/methods.py
# --8<-- [end:method]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from tiny import tiny_model_dir

    from syne_prune.baselines import prune

    root = Path(tempfile.mkdtemp())
    model = tiny_model_dir(root / "model", classifier=True)
    # --8<-- [start:run]
    results = prune("uniform", str(model), "synthetic_sentiment", max_params=[0.9, 0.6], output=root / "uniform",
                    max_length=32, examples=64, max_train_examples=200, max_eval_examples=50, progress=False)
    # --8<-- [end:run]
    for result in results:
        assert result.row["params_ratio"] <= result.row["budget"], result.row
        assert (result.path / "config.json").exists()
        print(f"uniform at {result.row['budget']}: params {result.row['params_ratio']:.3f}, kept {result.pruned.info}")


if __name__ == "__main__":
    main()
