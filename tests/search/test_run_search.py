"""Weight-sharing search end to end on tiny super-networks and a real GLUE slice (Syne Tune LocalBackend)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from syne_tune.experiments import load_experiment

from syne_prune import SynePruneError, get_family, get_search_space, masked
from syne_prune.search import SCHEDULERS, NoRepeatScheduler, SearchConfig, WeightSharingSettings, export_from_search, run_search
from syne_prune.supernet import load_supernet

ARCH_OF = {"random": "bert", "ehvi": "bert", "nsga2": "bert", "morea": "roberta", "moasha": "roberta", "local_search": "roberta"}


_SEARCHES: dict = {}


def _search(supernets, tmp_path_factory, scheduler: str):
    if scheduler not in _SEARCHES:
        out = tmp_path_factory.mktemp(f"search-{scheduler}") / "out"
        config = SearchConfig(trial_settings=WeightSharingSettings(str(supernets[ARCH_OF[scheduler]]), fidelity_levels=3), output=str(out),
                              scheduler=scheduler, n_workers=2,
                              max_trials=6, seed=1, eval_batch_size=8)
        cwd = tmp_path_factory.mktemp(f"cwd-{scheduler}")
        previous = os.getcwd()
        os.chdir(cwd)  # pool workers start here too
        try:
            _SEARCHES[scheduler] = (out, run_search(config, progress=False), config)
        finally:
            os.chdir(previous)
        assert os.listdir(cwd) == []  # a search writes nothing outside its output
    return _SEARCHES[scheduler]


# random in the fast tier; each further scheduler runs a real search of its own (seconds each)
@pytest.mark.parametrize("scheduler", [s if s == "random" else pytest.param(s, marks=pytest.mark.slow) for s in SCHEDULERS])
def test_every_scheduler_produces_the_outputs(supernets, tmp_path_factory, scheduler):
    out, summary, config = _search(supernets, tmp_path_factory, scheduler)
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and sorted(trials["trial_id"]) == list(range(6))
    assert set(trials["status"]) <= {"completed", "stopped"}
    names = list(get_search_space("medium", _shape(supernets[ARCH_OF[scheduler]])).config_space)
    assert not trials.duplicated(subset=names).any()
    space = get_search_space("medium", _shape(supernets[ARCH_OF[scheduler]]))
    first = trials.sort_values("trial_id").head(3)[names].to_dict("records")
    assert first == space.initial_points()  # largest, smallest, midpoint come first
    done = trials[trials["status"] == "completed"]
    assert ((done["params"] > 0) & (done["params"] <= 1)).all()
    assert trials["test_error"].isna().all()  # --test-split pareto (default): trials are scored on validation only
    assert trials.loc[trials["trial_id"] == 0, "params"].item() == pytest.approx(1.0)  # the largest is the full model
    pareto = pd.read_csv(out / "pareto.csv")
    assert 1 <= len(pareto) <= len(done) and set(pareto["trial_id"]) <= set(done["trial_id"])
    assert pareto["test_error"].between(0, 1).all()  # ... and after the search, the Pareto set on the test split
    scored = pd.read_csv(out / "test_errors.csv")
    assert sorted(scored["trial_id"]) == sorted(pareto["trial_id"])
    points = done[["error", "params"]].to_numpy()
    for _, row in pareto.iterrows():  # nothing completed dominates a Pareto member
        assert not ((points <= [row["error"], row["params"]]).all(1) & (points < [row["error"], row["params"]]).any(1)).any()
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "summary.json").read_text())
    assert saved["scheduler"] == scheduler and saved["seed"] == 1 and saved["hypervolume"] > 0
    assert saved["hypervolume_reference_point"] == [1.0, 1.0] and "versions" in saved
    cost = saved["scheduler_cost"]  # every started trial came from one accepted suggestion, timed
    assert cost["suggestions"] == len(trials) and 0 < cost["suggest_s"] < saved["wallclock_s"] and cost["no_new_subnetwork"] == 0
    # each accepted suggestion follows at most MAX_ASKS proposals of sub-networks already started
    assert cost["repeats_rejected"] in range(NoRepeatScheduler.MAX_ASKS * cost["suggestions"] + 1)
    experiment = load_experiment("part-0", local_path=str(out / "syne-tune"))
    assert set(experiment.results["trial_id"]) == set(range(6))
    if scheduler == "moasha":
        stopped = trials[trials["status"] == "stopped"]
        assert (stopped["fidelity"] < config.max_fidelity).all()


def _shape(supernet_dir):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(supernet_dir)
    return get_family(config).shape(config)


@pytest.mark.slow
def test_a_failing_trial_is_recorded_and_the_search_finishes(supernets, tmp_path):
    script = tmp_path / "flaky_trial.py"
    script.write_text(
        "import sys\n"
        "from syne_prune.search.trial import main\n"
        "args = sys.argv[1:]\n"
        "config = dict(zip(args[0::2], args[1::2]))\n"
        "if config['--num_heads_0'] == '0' and config['--num_units_0'] == '0':  # the smallest: point it at a missing super-network\n"
        "    config['--supernet'] = '/nonexistent/supernet'\n"
        "raise SystemExit(main([word for pair in config.items() for word in pair]))\n"
    )
    out = tmp_path / "out"
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="random",
                                      backend="local", n_workers=2, max_trials=6,
                                      eval_batch_size=8), progress=False, entry_point=str(script))
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == 6 and summary["trials"]["failed"] == 1
    failed = trials[trials["status"] == "failed"].iloc[0]
    assert failed["num_heads_0"] == 0 and "not found" in failed["failure_reason"]


_NOISY_SEARCH = """
import logging, sys, warnings
from gpytorch.utils.warnings import NumericalWarning
from syne_prune.cli import main
from syne_prune.search.syne_tune_fixes import FixedEHVI

suggest = FixedEHVI.suggest

def noisy_suggest(self):  # what gpytorch and Syne Tune do during real suggestions, made certain
    warnings.warn("Very small noise values detected (test marker)", NumericalWarning)
    logging.getLogger("syne_tune.test_marker").warning("third-party record (test marker)")
    logging.getLogger("syne_prune.test_marker").warning("our message (test marker)")
    return suggest(self)

FixedEHVI.suggest = noisy_suggest
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_local_ehvi_search_writes_only_to_its_output_and_shows_only_progress_and_our_messages(supernets, tmp_path):
    """--backend local from an empty working directory, --output elsewhere: the directory stays empty
    (Syne Tune's LocalBackend wrote std.out there); third-party warnings and log records land in
    OUTPUT/search.log, never on the console."""
    cwd, out = tmp_path / "cwd", tmp_path / "elsewhere" / "out"
    cwd.mkdir()
    argv = ["search", "--supernet", str(supernets["bert"]), "--scheduler", "ehvi", "--backend", "local", "--n-workers", "2",
            "--max-trials", "2", "--eval-batch-size", "8", "--output", str(out)]
    run = subprocess.run([sys.executable, "-c", _NOISY_SEARCH, *argv], cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 trials (0 failed)" in run.stdout
    assert os.listdir(cwd) == []
    lines = run.stderr.replace("\r", "\n").splitlines()
    # ours may warn too: the tiny test super-network learned nothing of RTE, and the search says so (evaluation.has_learned)
    ours = [line for line in lines if line.startswith("warning: the unpruned network's validation")]
    assert len(ours) == 1 and "it has not learned rte" in ours[0]
    assert [line for line in lines if "warn" in line.lower() and "syne_prune" not in line and line not in ours] == [], run.stderr[-3000:]
    assert any(line.endswith("our message (test marker)") for line in lines)
    log = (out / "search.log").read_text()
    assert "NumericalWarning: Very small noise values detected (test marker)" in log
    assert "syne_tune.test_marker: third-party record (test marker)" in log and "our message" not in log


def test_a_search_records_its_precision_and_a_resume_in_another_one_is_refused(supernets, tmp_path_factory, tmp_path, capsys):
    from syne_prune.precision import use_precision
    from syne_prune.search.outputs import check_resumed_compute

    out, _, config = _search(supernets, tmp_path_factory, "random")
    assert json.loads((out / "search.json").read_text())["compute"] == {"precision": "fp32", "device": "cpu"}
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()}
    with use_precision("bf16"), pytest.raises(SynePruneError, match=r"^--resume in precision bf16, but the interrupted run evaluated its "
                                                                     r"trials in fp32; resume with --precision fp32, or start again"):
        run_search(replace(config, output=str(copy)), resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file()} == before  # nothing touched

    record = json.loads((copy / "search.json").read_text())
    (copy / "search.json").write_text(json.dumps({**record, "compute": {"precision": "fp32", "device": "cuda"}}))
    check_resumed_compute(copy, {"precision": "fp32", "device": "cpu"}, ("error", "params"))  # another device: said
    assert "note: resuming on cpu; the interrupted run evaluated its trials on cuda" in capsys.readouterr().err
    with pytest.raises(SynePruneError, match=r"^--resume on cpu, but the interrupted search measured latency on cuda; resume with "
                                             r"--device cuda, or start again"):
        check_resumed_compute(copy, {"precision": "fp32", "device": "cpu"}, ("error", "latency"))
    (copy / "search.json").write_text(json.dumps({k: v for k, v in record.items() if k != "compute"}))
    check_resumed_compute(copy, {"precision": "bf16", "device": "cuda"}, ("error", "latency"))  # recorded before it was kept


@pytest.mark.slow
def test_killed_search_resumes_with_every_trial_once(supernets, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "syne_prune.cli", "search", "--supernet", str(supernets["bert"]), "--scheduler", "morea",
            "--n-workers", "2", "--max-trials", "7", "--seed", "3", "--eval-batch-size", "8", "--backend", "local",
            "--output", str(out)]  # slow trials: killed mid-way
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "trials.csv").exists() and len(pd.read_csv(out / "trials.csv")) >= 3:
            break
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # the search and its trial processes, mid-way
    process.wait()
    before = pd.read_csv(out / "trials.csv")
    assert 3 <= len(before) < 7
    with pytest.raises(SynePruneError, match="already exists; pass --resume"):
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="morea", max_trials=7,
                                seed=3, eval_batch_size=8), progress=False)
    run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(out), scheduler="morea", max_trials=7, seed=3,
                            eval_batch_size=8),
               resume=True, progress=False)
    after = pd.read_csv(out / "trials.csv")
    names = [c for c in after.columns if c.startswith(("num_heads_", "num_units_"))]
    assert len(after) == 7 and after["trial_id"].is_unique and not after.duplicated(subset=names).any()
    pd.testing.assert_frame_equal(after.head(len(before)), before)  # finished trials kept as they were
    assert (out / "syne-tune" / "part-1").is_dir()


def test_export_from_search_reloads_with_transformers(supernets, tmp_path_factory, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out, _, _ = _search(supernets, tmp_path_factory, "random")
    model_dir, row = export_from_search(out, tmp_path / "model", max_params=0.9)
    pareto = pd.read_csv(out / "pareto.csv")
    best = pareto[pareto["params"] <= 0.9].sort_values("error").iloc[0]
    assert row["trial_id"] == best["trial_id"]
    supernet = load_supernet(supernets["bert"])
    space = get_search_space("medium", _shape(supernets["bert"]))
    mask = space.to_mask({k: row[k] for k in space.config_space})
    batch = supernet.tokenizer(["a man is here", "nobody came to the party"], padding=True, return_tensors="pt")
    with torch.inference_mode(), masked(supernet.model, mask):
        want = supernet.model(**batch).logits
    loaded = AutoModelForSequenceClassification.from_pretrained(model_dir, trust_remote_code=True).eval()
    with torch.inference_mode():
        assert (loaded(**batch).logits - want).abs().max() <= 1e-5
    with pytest.raises(SynePruneError, match="no Pareto sub-network has a parameter ratio <= 0.01"):
        export_from_search(out, tmp_path / "none", max_params=0.01)
    with pytest.raises(SynePruneError, match="no trial 99"):
        export_from_search(out, tmp_path / "none", trial_id=99)


def test_export_from_a_search_records_its_task_and_recovers_from_its_supernet(supernets, glue_dir, tmp_path_factory, tmp_path):
    from syne_prune.cli import main

    out, _, _ = _search(supernets, tmp_path_factory, "random")
    argv = ["export", "--search-dir", str(out), "--max-params", "0.9", "--output", str(tmp_path / "model"), "--recover-epochs", "1"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "model" / "syne_prune.json").read_text())
    supernet = str(supernets[ARCH_OF["random"]].resolve())
    assert record["task"] == "rte" and record["supernet"] == supernet and record["recovery"]["teacher"] == supernet
    assert record["data"] == {"data_dir": str(glue_dir.resolve()), "validation_fraction": 0.3, "seed": 0, "max_length": 48}
    assert [h["epoch"] for h in record["recovery"]["history"]] == [1]


def test_the_same_subnetwork_is_never_started_twice_and_the_budget_is_exact():
    from syne_tune.optimizer.scheduler import TrialScheduler, TrialSuggestion

    from syne_prune import EncoderShape
    from syne_prune.search import NoRepeatScheduler, subnetwork_key

    space = get_search_space("small", EncoderShape(num_layers=2, num_heads=4, num_neurons=37, hidden_size=32))

    class Scripted(TrialScheduler):
        def __init__(self, configs):
            super().__init__(random_seed=0)
            self.configs = list(configs)

        def suggest(self):
            return TrialSuggestion.start_suggestion(self.configs.pop(0)) if self.configs else None

    configs = [{"num_layers": 0, "num_heads": 1, "num_units": 1}, {"num_layers": 0, "num_heads": 4, "num_units": 30},
               {"num_layers": 1, "num_heads": 2, "num_units": 5}, {"num_layers": 2, "num_heads": 2, "num_units": 5},
               {"num_layers": 2, "num_heads": 3, "num_units": 5}]
    wrapped = NoRepeatScheduler(Scripted(configs), space, {subnetwork_key(space, configs[2])}, budget=2)
    first, second = wrapped.suggest().config, wrapped.suggest().config
    assert first == configs[0]  # the second config is the same 0-layer network; the third was finished before
    assert second == configs[3]
    assert wrapped.suggest() is None  # budget of 2 spent


def test_fidelity_chunks_are_cut_in_split_order_and_length_sorted_inside(supernets):
    """MO-ASHA's early rungs must see a fair sample of the validation split, not its shortest examples."""
    from syne_prune.data import encode, load_task
    from syne_prune.search.trial import Evaluator, TrialSettings

    evaluator = Evaluator(TrialSettings(supernet=str(supernets["bert"]), fidelity_levels=3, eval_batch_size=4))
    hp = evaluator.supernet.metadata["hyperparameters"]
    data = load_task("rte", hp["data_dir"], hp["validation_fraction"], hp["seed"], max_train_examples=1)
    validation = encode(data.validation, evaluator.supernet.tokenizer, hp["max_length"], False)
    segments = np.array_split(np.arange(len(validation)), 3)
    assert len(evaluator.validation_chunks) == 3

    def rows(batch) -> list[tuple]:
        return [tuple(ids[mask.bool()].tolist()) for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]

    for chunk, segment in zip(evaluator.validation_chunks, segments):
        got = [row for batch in chunk for row in rows(batch)]
        assert sorted(got) == sorted(tuple(validation[i]["input_ids"]) for i in segment)  # exactly this segment
        assert [len(r) for r in got] == sorted(len(r) for r in got)  # shortest first inside the chunk


def test_an_evaluator_scores_with_onednn_off_and_the_same_numbers(supernets, monkeypatch):
    """Trials and blackbox rows score inside evaluation.many_shapes (oneDNN's per-shape cache off): predict
    sees it off, it is on again afterwards, and each fidelity level's error equals scoring the extracted
    sub-network with oneDNN on, to 1e-6."""
    import torch

    from syne_prune.evaluation import evaluate, predict
    from syne_prune.search import trial
    from syne_prune.search.trial import Evaluator, TrialSettings
    from syne_prune.surgery import extract_subnetwork

    seen = []

    def spy(*args, **kwargs):
        seen.append(torch.backends.mkldnn.enabled)
        return predict(*args, **kwargs)

    monkeypatch.setattr(trial, "predict", spy)
    monkeypatch.setattr(trial, "evaluate", lambda *a, **k: (seen.append(torch.backends.mkldnn.enabled), evaluate(*a, **k))[1])
    evaluator = Evaluator(TrialSettings(supernet=str(supernets["bert"]), fidelity_levels=3, eval_batch_size=4))
    assert torch.backends.mkldnn.enabled
    for config in evaluator.space.initial_points():
        levels = []
        evaluator.evaluate(config, lambda result: levels.append(result["error"]))
        test = evaluator.test_error(config)
        assert torch.backends.mkldnn.enabled
        sub = extract_subnetwork(evaluator.supernet.model, evaluator.space.to_mask(config)).eval()
        errors, seen_p, seen_y = [], [], []
        for chunk in evaluator.validation_chunks:
            p, y = predict(sub, chunk, False)
            seen_p.append(p.astype(np.int64))
            seen_y.append(y)
            errors.append(evaluator.task.error(np.concatenate(seen_y), np.concatenate(seen_p)))
        assert levels == pytest.approx(errors, abs=1e-6)
        assert test == pytest.approx(evaluate(sub, evaluator.test, evaluator.task)["error"], abs=1e-6)
    assert len(seen) == 3 * 4 and not any(seen)  # 3 configurations x (3 levels + the test split), all with oneDNN off


@pytest.mark.slow
def test_test_split_pareto_scores_the_pareto_set_as_every_trial_would(supernets, tmp_path):
    """Scoring only the Pareto set after the search gives the test errors each trial would have reported."""
    from syne_prune.artifacts import read_trials

    tables = {}
    for mode in ("every-trial", "pareto"):
        out = tmp_path / mode
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["roberta"])), output=str(out), scheduler="random", n_workers=2,
                                max_trials=8, seed=3, eval_batch_size=8, test_split=mode), progress=False)
        tables[mode] = (read_trials(out / "trials.csv").set_index("trial_id").sort_index(), pd.read_csv(out / "pareto.csv"))
    every, pareto_only = tables["every-trial"][0], tables["pareto"][0]
    assert every["test_error"].notna().all() and len(every) == 8
    pd.testing.assert_frame_equal(every[["error", "params"]], pareto_only[["error", "params"]], check_exact=True)
    members = tables["pareto"][1]["trial_id"].tolist()
    assert members == tables["every-trial"][1]["trial_id"].tolist() and len(members) >= 1
    assert pareto_only.loc[members, "test_error"].to_numpy() == pytest.approx(every.loc[members, "test_error"].to_numpy(), abs=1e-12)
    assert pareto_only.drop(index=members)["test_error"].isna().all()  # nobody else paid for a test pass
    # resuming a finished search scores nothing twice
    summary = run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernets["roberta"])), output=str(tmp_path / "pareto"), scheduler="random",
                                      n_workers=2, max_trials=8, seed=3, eval_batch_size=8, test_split="pareto"),
                         resume=True, progress=False)
    assert summary["pareto_size"] == len(members)
    assert len(pd.read_csv(tmp_path / "pareto" / "test_errors.csv")) == len(members)
