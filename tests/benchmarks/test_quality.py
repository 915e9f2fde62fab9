"""benchmarks/quality.py's yardstick (the share of the reference's gain over the best constant answer) and the recipe
grid's row, read from a real search."""
from __future__ import annotations

import math

import pytest
import quality  # benchmarks/ is on sys.path (pytest.ini)


def test_kept_is_the_share_of_the_gain_over_the_constant_answer():
    # MRPC: "paraphrase" everywhere scores F1 0.812; the reference gains 0.05 over it, the sub-network 0.038 of that
    assert quality.kept("mrpc", {"f1": 0.85}, {"f1": 0.862, "constant": 0.812}) == pytest.approx(0.76, abs=1e-12)
    # RTE: the majority class scores 0.527; 0.013 of the reference's 0.023
    assert quality.kept("rte", {"accuracy": 0.54}, {"accuracy": 0.55, "constant": 0.527}) == pytest.approx(0.013 / 0.023, abs=1e-12)
    # STS-B: a constant's Spearman is 0, so the share is the plain ratio
    assert quality.kept("stsb", {"spearman": 0.8}, {"spearman": 0.85, "constant": 0.0}) == pytest.approx(0.8 / 0.85, abs=1e-12)
    assert math.isnan(quality.kept("rte", {"accuracy": 0.54}, {"accuracy": 0.527, "constant": 0.527}))  # the reference gained nothing


@pytest.fixture(scope="module")
def small_space_search(tiny_model_dirs, glue_dir, tmp_path_factory):
    """A tiny BERT super-network over the small search space (the one recipe_grid reads trials in) and a six-trial
    random search on it, both written by the real training and search code."""
    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search
    from syne_prune.supernet import TrainingConfig, train_supernet

    root = tmp_path_factory.mktemp("recipe-grid")
    supernet, search = root / "supernet", root / "search"
    train_supernet(TrainingConfig(teacher=None, model=str(tiny_model_dirs["bert"]), task="rte", output=str(supernet), data_dir=str(glue_dir),
                                  search_space="small", strategy="sandwich", epochs=1, batch_size=16, lr=1e-3, max_length=48,
                                  max_train_examples=32, max_eval_examples=16), progress=False)
    run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernet)), output=str(search), scheduler="random", n_workers=2, max_trials=6, seed=0,
                            eval_batch_size=8), progress=False)
    return supernet, search


def _prunable_share(model, space, config) -> float:
    """The share of the encoder layers' parameters the sub-network keeps, counted on the extracted model."""
    from syne_prune import extract_subnetwork, get_family

    def encoder(m):  # pruned classes keep the stock attribute paths
        return sum(p.numel() for p in get_family(model.config).layers(m).parameters())
    return encoder(extract_subnetwork(model, space.to_mask(config))) / encoder(model)


@pytest.mark.slow
def test_recipe_grid_row_is_read_from_the_checkpoint_and_the_search(small_space_search):
    import json

    import pandas as pd
    import recipe_grid

    from syne_prune import get_family, get_search_space
    from syne_prune.supernet import load_supernet

    supernet, search = small_space_search
    row = recipe_grid.point_row("rte", 0, "lr1.5e-4", supernet, search)
    recorded = json.loads((supernet / "supernet.json").read_text())
    assert {k: row[k] for k in ("task", "seed", "point", "lr", "epochs", "warmup_ratio", "train_time_s")} == {
        "task": "rte", "seed": 0, "point": "lr1.5e-4", "lr": 1e-3, "epochs": 1,
        "warmup_ratio": recorded["hyperparameters"].get("warmup_ratio", 0.0), "train_time_s": recorded["train_time_s"]}
    assert row["hypervolume"] == json.loads((search / "summary.json").read_text())["hypervolume"]
    # the best validation error under each budget, from the completed trials' sub-networks counted on extracted models
    model = load_supernet(str(supernet)).model
    space = get_search_space("small", get_family(model.config).shape(model.config))
    trials = pd.read_csv(search / "trials.csv")
    done = trials[trials["status"] == "completed"]
    assert len(done) >= 3
    shares = [_prunable_share(model, space, {n: int(t[n]) for n in space.config_space}) for _, t in done.iterrows()]
    assert min(shares) < 0.33 < max(shares) == pytest.approx(1.0)  # the budgets separate the trials
    for budget in recipe_grid.BUDGETS:
        inside = [error for error, share in zip(done["error"], shares) if share <= budget + 1e-9]
        expected = min(inside) if inside else float("nan")
        assert row[f"valid_error_{budget:g}"] == pytest.approx(expected, abs=1e-12, nan_ok=True), budget
    errors = " | ".join(f"{row[f'valid_error_{b:g}']:.4f}" for b in recipe_grid.BUDGETS)
    line = f"| rte | 0 | lr1.5e-4 | 0.001 | 1 | 0 | {row['hypervolume']:.4f} | {errors} | {row['train_time_s']:.0f} |"
    assert line in recipe_grid.markdown(pd.DataFrame([row]))


def test_the_long_row_trains_its_super_network_long_epochs_and_every_other_stage_epochs(monkeypatch, tmp_path):
    import argparse

    trained = []
    monkeypatch.setattr(quality, "train_supernet", lambda config, **_: trained.append(config) or {"teacher": None})
    args = argparse.Namespace(model="m", data_dir=None, search_space="small", epochs=3, long_epochs=7, batch_size=32, max_length=128,
                              validation_fraction=0.3, max_train_examples=None, max_eval_examples=None, warmup_ratio=0.0,
                              quiet=True, teacher_learning_rates=[3e-5], teacher_warmup_ratio=0.1, layer_distillation_weight=1.0)
    ref = {"dir": tmp_path / "reference"}
    quality.train(args, "cola", 0, tmp_path / "reference", strategy="standard", lr=8e-5)
    for row in ("teacher", "long", "layer"):
        quality.train(args, "cola", 0, tmp_path / row, lr=8e-5, **quality.supernet_settings(args, quality.ROWS[row], ref))
    assert [config.epochs for config in trained] == [3, 3, 7, 3]
    assert [config.teacher for config in trained[1:]] == [str(ref["dir"])] * 3  # the same teacher: only the epochs differ
