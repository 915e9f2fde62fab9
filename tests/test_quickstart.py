"""The quickstart's recipe end to end on a tiny model: teacher -> super-network from it -> search -> export -> recovery."""
from __future__ import annotations

import json

import pytest

from syne_prune.quickstart import QuickstartConfig, quickstart


@pytest.mark.slow
def test_quickstart_runs_the_recipe_and_reports_before_and_after_recovery(tiny_model_dirs, glue_dir, tmp_path):
    out = tmp_path / "qs"
    result = quickstart(QuickstartConfig(output=str(out), task="rte", data_dir=str(glue_dir), model=str(tiny_model_dirs["bert"]),
                                         epochs=1, max_train_examples=32, max_trials=4, n_workers=1,
                                         recover_epochs=1), progress=False)
    supernet = json.loads((out / "supernet" / "supernet.json").read_text())
    assert supernet["teacher"]["source"] == "auto" and supernet["initialised_from"] == str(out / "supernet" / "teacher")
    assert supernet["importance"]["method"] == "fisher"
    record = json.loads((out / "model" / "syne_prune.json").read_text())
    chosen = result["chosen"]
    assert record["params_ratio"] <= 0.75 and chosen["params"] <= 0.75
    # the sub-network before recovery is the chosen trial's, scored on the same test split by the same code
    assert result["before_recovery"] == pytest.approx(1.0 - chosen["test_error"], abs=1e-6)
    assert result["after_recovery"] == pytest.approx(record["recovery"]["after"]["test"][result["metric"]], abs=1e-12)
    assert (out / "model-before-recovery" / "syne_prune.json").is_file() and len(record["recovery"]["history"]) == 1
    teacher = json.loads((out / "supernet" / "teacher" / "supernet.json").read_text())
    assert result["teacher"] == teacher["metrics"]["largest"]["test"][result["metric"]]
    # every printed test metric is on the same split: the teacher's, the super-network's and the sub-network's
    assert teacher["num_test_examples"] == supernet["num_test_examples"] == record["recovery"]["num_test_examples"]
