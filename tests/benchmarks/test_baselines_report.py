"""benchmarks/baselines_vs_search.py --from-quality: a tiny fake benchmarks/quality.py workdir (only the files the
option reads, no weights, no training) stands in for the finetuned and ws-nas steps; an absent run falls back."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from syne_prune.artifacts import SupernetDir
from syne_prune.objectives import SubnetSize

ROOT = Path(__file__).resolve().parents[2]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


import baselines_collect as bvs_collect  # noqa: E402 - benchmarks/ is on sys.path (pytest.ini)
import baselines_report as report  # noqa: E402
import baselines_vs_search as bvs  # noqa: E402
import paper_anchors  # noqa: E402
import quality_runs  # noqa: E402


def _checkpoint(directory: Path, **record) -> Path:
    directory.mkdir(parents=True)
    SupernetDir(directory).write(record)
    return directory


def fake_quality_run(root: Path, task: str, seed: int, model: str = MODEL) -> Path:
    """DIR/<task>-seed<k>/ as quality.py leaves it: two references (the teacher row used lr 0.00015), supernet-teacher
    trained against it, search-teacher with three completed trials."""
    run = root / f"{task}-seed{seed}"
    common = {"task": task, "seed": seed}
    reference = _checkpoint(run / "reference-lr0.00015", model=model, strategy="standard", train_time_s=284.5, teacher=None,
                            hyperparameters={"lr": 0.00015, "batch_size": 16, "epochs": 3},
                            metrics={"largest": {"validation": {"error": 0.15}, "test": {"error": 0.14}}},
                            constant_answer={"validation": {"answer": 1, "f1": 0.75, "error": 0.25}}, **common)
    _checkpoint(run / "reference-lr8e-05", model=model, strategy="standard", train_time_s=296.0, teacher=None, **common)
    supernet = _checkpoint(run / "supernet-teacher", model=str(reference), initialised_from=str(reference), strategy="full",
                           train_time_s=479.5, teacher={"source": str(reference), "path": str(reference)}, **common)
    fake_search(run / "search-teacher", supernet, "ehvi", common, error=[0.20, 0.16, 0.30], params=[0.53, 0.90, 0.70], test_error=[0.15, 0.13, 0.28])
    return run


def fake_search(search: Path, supernet: Path, scheduler: str, common: dict, **trials) -> None:
    """A finished weight-sharing search's summary.json, trials.csv (three completed trials finishing at 6, 9.5, 125 s) and
    hypervolume.csv (not read by the benchmark, which computes its own)."""
    search.mkdir(parents=True)
    record = {"supernet": str(supernet), "mode": "weight-sharing", "scheduler": scheduler, "wallclock_s": 125.0, **common}
    (search / "summary.json").write_text(json.dumps(record))
    pd.DataFrame({"trial_id": [1, 2, 3], "status": ["completed"] * 3, **trials, "fidelity": [1, 1, 1], "part": [0, 0, 0],
                  "finished_s": [6.0, 9.5, 125.0]}).to_csv(search / "trials.csv", index=False)
    pd.DataFrame({"wallclock_s": [6.0, 9.5, 125.0], "hypervolume": [0.37, 0.40, 0.41]}).to_csv(search / "hypervolume.csv", index=False)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def test_finds_the_teacher_rows_reference_supernet_search_and_times(tmp_path):
    run = fake_quality_run(tmp_path / "quality", "mrpc", 0)
    found = quality_runs.find_quality_run(tmp_path / "quality", MODEL, "mrpc", 0)
    assert found.reference == run / "reference-lr0.00015"  # the teacher's, not the other learning rate's
    assert (found.supernet, found.search) == (run / "supernet-teacher", run / "search-teacher")
    assert (found.reference_s, found.supernet_s, found.search_s) == (284.5, 479.5, 125.0)
    fake_quality_run(tmp_path / "other", "mrpc", 0, model="bert-base-cased")
    with pytest.raises(quality_runs.NotUsable, match="fine-tuned from bert-base-cased"):
        quality_runs.find_quality_run(tmp_path / "other", MODEL, "mrpc", 0)
    (run / "search-teacher" / "summary.json").unlink()
    with pytest.raises(quality_runs.NotUsable, match="unfinished"):
        quality_runs.find_quality_run(tmp_path / "quality", MODEL, "mrpc", 0)


def test_an_existing_step_is_kept(tmp_path, capsys):
    fake_quality_run(tmp_path / "quality", "mrpc", 0)
    work = tmp_path / "work"
    (work / "finetuned").mkdir(parents=True)  # a fresh fine-tune the baselines may already have used
    quality_runs.link_quality_run(tmp_path / "quality", MODEL, "mrpc", 0, work)
    assert not (work / "finetuned").is_symlink()
    assert (work / "ws-nas").resolve() == (tmp_path / "quality" / "mrpc-seed0" / "search-teacher").resolve()
    assert "already there: kept" in capsys.readouterr().out


def test_from_quality_links_steps_counts_times_and_falls_back(tmp_path, monkeypatch, capsys, glue_dir):
    quality = tmp_path / "quality"
    fake_quality_run(quality, "mrpc", 0)  # seed 1 has no quality run
    before = _snapshot(quality)
    commands = []

    def fake_call(command, **kwargs):  # what run_step would start: recorded, its output directory created, no training
        commands.append([str(c) for c in command])
        output = Path(command[command.index("--output") + 1])
        output.mkdir(parents=True, exist_ok=True)
        if output.name == "finetuned":  # a fine-tuned model's record: the super-network then distils from it
            SupernetDir(output).write({"train_time_s": 100.0, "metrics": {"largest": {
                "validation": {"error": 0.2}, "test": {"error": 0.25}}}})
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.setattr(bvs, "reachable_models", lambda scale: [MODEL])
    # a model of 100 parameters, 50 of them prunable: a params ratio p holds 2p - 1 of the prunable ones
    monkeypatch.setattr(bvs_collect, "full_size", lambda work: SubnetSize(params=100, encoder_params=50, macs=1000, seq_len=128))
    work, out = tmp_path / "work", tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["baselines_vs_search.py", "--tasks", "mrpc", "--seeds", "0", "1", "--methods", "ws-nas", "rfp",
                                      "--thresholds", "0.5,0.9", "--workdir", str(work), "--out-dir", str(out),
                                      "--anchors", str(tmp_path / "no-anchors"), "--from-quality", str(quality), "--data-dir", str(glue_dir)])
    with pytest.raises(SystemExit) as exit_:
        bvs.main()
    assert exit_.value.code == 0
    seed0, seed1 = work / "all-MiniLM-L6-v2" / "mrpc" / "seed0", work / "all-MiniLM-L6-v2" / "mrpc" / "seed1"
    assert (seed0 / "finetuned").resolve() == (quality / "mrpc-seed0" / "reference-lr0.00015").resolve()
    assert (seed0 / "supernet").resolve() == (quality / "mrpc-seed0" / "supernet-teacher").resolve()
    assert (seed0 / "ws-nas").resolve() == (quality / "mrpc-seed0" / "search-teacher").resolve()
    assert not any((seed1 / name).is_symlink() for name in ("finetuned", "supernet", "ws-nas"))  # trained as before
    ran = [(c[c.index("syne_prune") + 1], Path(c[c.index("--output") + 1]).relative_to(work).as_posix()) for c in commands]
    supernet_command = next(c for c in commands if c[c.index("--output") + 1].endswith("seed1/supernet"))
    assert supernet_command[supernet_command.index("--teacher") + 1] == str(seed1 / "finetuned")  # the baselines' model teaches
    assert ran == [("prune", "all-MiniLM-L6-v2/mrpc/seed0/rfp"),  # seed 0: only the baseline runs
                   ("train-supernet", "all-MiniLM-L6-v2/mrpc/seed1/finetuned"), ("train-supernet", "all-MiniLM-L6-v2/mrpc/seed1/supernet"),
                   ("search", "all-MiniLM-L6-v2/mrpc/seed1/ws-nas"), ("prune", "all-MiniLM-L6-v2/mrpc/seed1/rfp")]
    assert "no usable quality run for mrpc seed 1 (no directory" in capsys.readouterr().out
    assert _snapshot(quality) == before  # read in place, nothing written there
    sizes = pd.read_csv(out / "relative_to_model_size.csv", index_col=0)
    # runtime = reference fine-tune 284.5 + teacher super-network 479.5 + search 125.0 = 889.0 s; prunable shares of the
    # trials 0.06, 0.8, 0.4: up to 0.75 trial 1 is the best on validation, <= 0.9 holds all (trial 2 best); the grid
    # is --thresholds and the tables' 0.33, 0.5, 0.75
    assert sizes[["runtime", "threshold", "test_error", "valid_error", "method", "seed"]].values.tolist() == [
        [889.0, t, 0.15, 0.20, "nas", 0] for t in (0.33, 0.5, 0.75)] + [[889.0, 0.9, 0.13, 0.16, "nas", 0]]
    hv = pd.read_csv(out / "hypervolume.csv")
    # at 764 + finished_s: (1 - 0.2)(1 - 0.06) = 0.752; + trial 2's (0.2 - 0.16)(1 - 0.8) = 0.008; trial 3 is dominated
    assert hv[["method", "runtime"]].values.tolist() == [["nas", 770.0], ["nas", 773.5], ["nas", 889.0]]
    assert hv["hv"].tolist() == pytest.approx([0.752, 0.760, 0.760], abs=1e-12)
    # over the swept range, trial 1's share 0.06 counts as 0.33: (1 - 0.2)(1 - 0.33) + 0.008 = 0.544
    finals = pd.read_csv(out / "hypervolume_final.csv")
    assert finals[["method", "runtime"]].values.tolist() == [["nas", 889.0]]
    # over the constant answer (validation error 0.25): trial 3 (0.30) adds nothing, (1 - 0.2/0.25)(1 - 0.06) = 0.188,
    # + (0.8 - 0.16/0.25)(1 - 0.8) = 0.032
    assert finals[["hv", "hv_swept", "hv_gain"]].values.tolist()[0] == pytest.approx([0.760, 0.544, 0.220], abs=1e-12)
    # answering "paraphrase" everywhere: F1 = 2p / (1 + p) for the positive share p of the test split (GLUE dev's slice)
    positive = pd.read_csv(glue_dir / "MRPC" / "dev.tsv", sep="\t", quoting=3)["Quality"].mean()
    constant = 1 - 2 * positive / (1 + positive)
    references = pd.read_csv(out / "unpruned_model.csv", index_col=0)
    assert references.values.tolist() == [["mrpc", "all-MiniLM-L6-v2", 0, 0.15, 0.14, pytest.approx(constant, abs=1e-12)],
                                          ["mrpc", "all-MiniLM-L6-v2", 1, 0.2, 0.25, pytest.approx(constant, abs=1e-12)]]
    gain = f"{(constant - 0.15) / (constant - 0.14):.1%} (1)"  # (constant - test error) / (constant - the reference's)
    assert f"| nas | 98.8% (1) | {gain} | – | 98.8% (1) | {gain} | – | 98.8% (1) | {gain} | – |" in (out / "results.md").read_text()


def test_the_papers_thresholds_become_shares_of_the_prunable_parameters(tmp_path):
    # BERT-base-cased, counted by hand: embeddings 28996*768 + 512*768 + 2*768 + LayerNorm 2*768 = 22,665,216, pooler
    # 590,592, classifier 1,538: 23,257,346 kept whole; 12 layers of 2,363,904 (attention) + 4,723,968 (FFN)
    assert paper_anchors.fixed_share("bert-base-cased") == pytest.approx(23_257_346 / 108_311_810, rel=1e-12)
    share = paper_anchors.fixed_share("bert-base-cased")
    # all-parameter thresholds holding 0.3 and 0.6 of the prunable parameters; seed 1's unpruned error is 0.2
    at = {0.3: share + 0.3 * (1 - share), 0.6: share + 0.6 * (1 - share)}
    rows = [[7200, at[0.3], 0.5, 0.5, "rfp", "bert-base-cased", "mrpc", 1], [7200, at[0.6], 0.4, 0.4, "rfp", "bert-base-cased", "mrpc", 1],
            [3600, at[0.6], 0.9, 0.9, "rfp", "bert-base-cased", "mrpc", 1],  # an earlier runtime: not the final result
            [7200, at[0.6], 0.1, 0.1, "rfp", "roberta-base", "mrpc", 1]]  # another model
    pd.DataFrame(rows, columns=report.COLUMNS).to_csv(tmp_path / "data_relative_to_model_size.csv")
    pd.DataFrame([["mrpc", "bert-base-cased", 1, 0.2, 0.2]], columns=["dataset", "model", "seed", "validation_error", "test_error"]) \
        .to_csv(tmp_path / "data_unpruned_model.csv")
    kept = paper_anchors.paper_kept(tmp_path, [0.25, 0.33, 0.75])
    # <= 0.25: nothing; <= 0.33: the 0.3 row, 0.5 / 0.8; <= 0.75: the 0.6 row, 0.6 / 0.8
    assert kept["threshold"].tolist() == [0.33, 0.75] and kept["seeds"].tolist() == [1, 1]
    assert kept["kept_mean"].tolist() == pytest.approx([0.625, 0.75], abs=1e-12)


def test_ws_nas_per_scheduler_searches_the_same_supernet_and_is_tabled_by_scheduler(tmp_path, monkeypatch, glue_dir):
    quality = tmp_path / "quality"
    fake_quality_run(quality, "mrpc", 0)
    commands = []

    def fake_call(command, **kwargs):  # a search with the command's --scheduler: trial 1 is better than the EHVI run's
        commands.append([str(c) for c in command])
        fake_search(Path(command[command.index("--output") + 1]), Path(command[command.index("--supernet") + 1]),
                    command[command.index("--scheduler") + 1], {"task": "mrpc", "seed": 0},
                    error=[0.18, 0.16, 0.30], params=[0.60, 0.90, 0.70], test_error=[0.14, 0.13, 0.28])
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.setattr(bvs, "reachable_models", lambda scale: [MODEL])
    monkeypatch.setattr(bvs_collect, "full_size", lambda work: SubnetSize(params=100, encoder_params=50, macs=1000, seq_len=128))
    work, out = tmp_path / "work", tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["baselines_vs_search.py", "--tasks", "mrpc", "--seeds", "0", "--methods", "ws-nas", "ws-nas-random",
                                      "ws-nas-ehvi", "--thresholds", "0.5", "--workdir", str(work), "--out-dir", str(out),
                                      "--anchors", str(tmp_path / "no-anchors"), "--from-quality", str(quality), "--data-dir", str(glue_dir)])
    with pytest.raises(SystemExit) as exit_:
        bvs.main()
    assert exit_.value.code == 0
    seed0 = work / "all-MiniLM-L6-v2" / "mrpc" / "seed0"
    # the linked super-network is trained: only ws-nas-random's search runs, on it, with its scheduler; ws-nas-ehvi
    # would repeat ws-nas (EHVI) and is skipped
    assert [(c[c.index("syne_prune") + 1], c[c.index("--supernet") + 1], c[c.index("--scheduler") + 1], c[c.index("--output") + 1])
            for c in commands] == [("search", str(seed0 / "supernet"), "random", str(seed0 / "ws-nas-random"))]
    # the paper's size table has only nas; the scheduler table has ws-nas under its scheduler (ehvi) and random_search.
    # Prunable shares: EHVI run 0.06, 0.8, 0.4;
    # the others 0.2, 0.8, 0.4. <= 0.33 / 0.5 / 0.75: trial 1 is the best on validation in both
    sizes = pd.read_csv(out / "relative_to_model_size.csv", index_col=0)
    assert set(sizes["method"]) == {"nas"}
    by_scheduler = pd.read_csv(out / "relative_to_model_size_ws_nas.csv", index_col=0)
    assert by_scheduler[["method", "threshold", "test_error", "valid_error", "runtime"]].values.tolist() == [
        ["ehvi", t, 0.15, 0.20, 889.0] for t in (0.33, 0.5, 0.75)] + [["random_search", t, 0.14, 0.18, 889.0] for t in (0.33, 0.5, 0.75)]
    finals = pd.read_csv(out / "hypervolume_final.csv")
    # random: (1 - 0.18)(1 - 0.2) + (0.18 - 0.16)(1 - 0.8) = 0.66
    assert finals["method"].tolist() == ["nas", "random_search"]
    assert finals["hv"].tolist() == pytest.approx([0.760, 0.660], abs=1e-12)
    text = (out / "results.md").read_text()
    assert "## WS-NAS by scheduler: all-MiniLM-L6-v2 / mrpc" in text and "| random_search | 100.0% (1) |" in text  # 0.86 / 0.86


def test_the_best_constant_answer_and_a_reference_that_did_not_learn(glue_dir):
    labels = pd.read_csv(glue_dir / "RTE" / "dev.tsv", sep="\t", quoting=3)["label"]
    majority = labels.value_counts(normalize=True).max()
    assert report.constant_error("rte", str(glue_dir)) == pytest.approx(1 - majority, abs=1e-12)  # accuracy: the majority class
    assert report.constant_error("stsb", str(glue_dir)) is None  # a constant has Spearman 0: no better yardstick
    assert report.constant_error("cola", str(glue_dir)) is None  # Matthews 0
    references = pd.DataFrame([["rte", "m", 0, 0.4, 1 - majority + 0.015, 1 - majority], ["rte", "m", 1, 0.3, 1 - majority - 0.025, 1 - majority],
                               ["stsb", "m", 0, 0.9, 0.95, None]],
                              columns=["dataset", "model", "seed", "validation_error", "test_error", "constant_error"])
    # seed 0 scores below the constant answer, seed 1 0.025 above it (more than the 0.02 margin); STS-B has no constant
    assert report.not_learned(references)["seed"].tolist() == [0]
    found = bvs_collect.Collected(*(pd.DataFrame(columns=report.COLUMNS),) * 2, pd.DataFrame(), pd.DataFrame(), references)
    text = report.markdown(found, pd.DataFrame(), pd.DataFrame(), type("Args", (), {"scale": "cpu"}))
    assert text.count("did not learn the task") == 1 and "m reference of rte seed 0 did not learn" in text


def _found(sizes: list, references: list) -> "bvs_collect.Collected":
    """A Collected of ``sizes`` rows (method, seed, test_error at threshold 0.5) and ``references`` (seed, test_error)."""
    size_rows = pd.DataFrame([[100.0, 0.5, error, error, method, "m", "mrpc", seed] for method, seed, error in sizes], columns=report.COLUMNS)
    keys = ["method", "model", "dataset", "seed", "runtime"]
    curves = pd.DataFrame([[method, "m", "mrpc", seed, 100.0, 1 - error] for method, seed, error in sizes], columns=[*keys, "hv"])
    finals = curves.assign(hv_swept=curves["hv"])
    refs = pd.DataFrame([["mrpc", "m", seed, error, error, 0.19] for seed, error in references],
                        columns=["dataset", "model", "seed", "validation_error", "test_error", "constant_error"])
    return bvs_collect.Collected(size_rows, size_rows.iloc[:0], curves, finals, refs)


def test_merge_keeps_runs_not_collected_now_and_replaces_those_collected(tmp_path, capsys):
    out = tmp_path / "out"
    earlier = _found([("nas", 0, 0.15), ("nas", 1, 0.16), ("rfp", 0, 0.17), ("rfp", 1, 0.18)], [(0, 0.14), (1, 0.13)])
    bvs_collect.write_results(earlier, out)
    # now: only seed 0's search again (new numbers), standard NAS for seed 0 (new), and seed 0's reference, changed
    now = _found([("nas", 0, 0.12), ("standard_nas", 0, 0.20)], [(0, 0.135)])
    merged = bvs_collect.merge_earlier(now, out)
    assert merged.sizes[["method", "seed", "test_error"]].values.tolist() == [
        ["nas", 0, 0.12], ["nas", 1, 0.16], ["rfp", 0, 0.17], ["rfp", 1, 0.18], ["standard_nas", 0, 0.20]]
    assert merged.finals[["method", "seed"]].values.tolist() == merged.sizes[["method", "seed"]].values.tolist()
    assert merged.finals["hv"].tolist() == pytest.approx([0.88, 0.84, 0.83, 0.82, 0.80], abs=1e-12)
    assert merged.references[["seed", "test_error"]].values.tolist() == [[0, 0.135], [1, 0.13]]
    assert "the reference of mrpc seed 0 differs from the earlier results' (test error 0.1350, earlier 0.1400)" in capsys.readouterr().out
    # written and merged again with nothing new: the same tables; no earlier files: what was collected
    bvs_collect.write_results(merged, out)
    again = bvs_collect.merge_earlier(_found([], []), out)
    pd.testing.assert_frame_equal(again.sizes, merged.sizes, check_dtype=False)
    assert bvs_collect.merge_earlier(now, tmp_path / "empty").sizes is now.sizes


def test_standard_nas_is_started_with_the_fine_tuned_models_learning_rate_and_batch_size(tmp_path, monkeypatch, glue_dir):
    """The commands the benchmark starts (recorded, not run: nothing trains here): linked from a quality run, the
    reference's lr 1.5e-4 and batch 16 are passed to the standard-NAS search; without one, finetuned is trained first
    and its recorded settings are passed."""
    quality = tmp_path / "quality"
    fake_quality_run(quality, "mrpc", 0)
    commands = []

    def fake_call(command, **kwargs):
        commands.append([str(c) for c in command])
        output = Path(command[command.index("--output") + 1])
        output.mkdir(parents=True, exist_ok=True)
        if output.name == "finetuned":
            SupernetDir(output).write({"train_time_s": 100.0, "hyperparameters": {"lr": 8e-05, "batch_size": 32},
                                                              "metrics": {"largest": {"validation": {"error": 0.2}, "test": {"error": 0.25}}}})
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.setattr(bvs, "reachable_models", lambda scale: [MODEL])
    monkeypatch.setattr(sys, "argv", ["baselines_vs_search.py", "--tasks", "mrpc", "--seeds", "0", "1", "--methods", "standard-nas",
                                      "--workdir", str(tmp_path / "work"), "--out-dir", str(tmp_path / "out"), "--from-quality", str(quality),
                                      "--anchors", str(tmp_path / "no-anchors"), "--data-dir", str(glue_dir)])
    with pytest.raises(SystemExit):
        bvs.main()
    ran = [(c[c.index("syne_prune") + 1], Path(c[c.index("--output") + 1]).name, c[c.index("--lr") + 1] if "--lr" in c else None,
            c[c.index("--batch-size") + 1] if "--batch-size" in c else None) for c in commands]
    assert ran == [("search", "standard-nas", "0.00015", "16"),  # seed 0: the linked reference's settings
                   ("train-supernet", "finetuned", None, None), ("search", "standard-nas", "8e-05", "32")]  # seed 1: its own fine-tune's
    assert commands[0][commands[0].index("--trial-kind") + 1] == "standard"


def test_merge_refuses_a_file_that_is_not_its_results_and_overwrites_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "relative_to_model_size.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SystemExit) as exit_:
        bvs_collect.merge_earlier(_found([("nas", 0, 0.15)], [(0, 0.14)]), out)
    assert exit_.value.code == 2
    assert "has no column(s) method, model, dataset, seed: not a results file of this script" in capsys.readouterr().err
    assert (out / "relative_to_model_size.csv").read_text() == "a,b\n1,2\n"


def test_the_hypervolume_over_the_constant_answer_counts_only_gains_over_it():
    frame = pd.DataFrame({"valid_error": [0.18, 0.10, 0.30], "prunable": [0.0, 0.5, 0.2], "time_s": [1.0, 2.0, 3.0]})
    # a constant scoring 0 (error 1, STS-B's Spearman): the plain hypervolume, 0.82 * 1 + (0.18 - 0.10) * 0.5 = 0.86
    assert bvs_collect.gain_hypervolume(frame, 1.0) == pytest.approx(bvs_collect.running_hypervolume(frame)["hv"].iloc[-1], abs=1e-12)
    assert bvs_collect.gain_hypervolume(frame, 1.0) == pytest.approx(0.86, abs=1e-12)
    # a constant at error 0.2 (MRPC-like): (1 - 0.9) * 1 + (0.9 - 0.5) * 0.5 = 0.3; the 0.30 row is worse than the constant
    assert bvs_collect.gain_hypervolume(frame, 0.2) == pytest.approx(0.3, abs=1e-12)
    assert np.isnan(bvs_collect.gain_hypervolume(frame, float("nan")))  # a reference recorded before the constant was kept
    keys = ["method", "model", "dataset", "seed", "runtime"]
    finals = pd.DataFrame([["nas", "m", "mrpc", 0, 10.0, 0.86, 0.5, np.nan]], columns=[*keys, "hv", "hv_swept", "hv_gain"])
    found = bvs_collect.Collected(pd.DataFrame(columns=report.COLUMNS), pd.DataFrame(columns=report.COLUMNS), pd.DataFrame(), finals,
                                  pd.DataFrame(columns=["dataset", "model", "seed", "validation_error", "test_error", "constant_error"]))
    text = report.markdown(found, pd.DataFrame(), pd.DataFrame(), type("Args", (), {"scale": "cpu"}))
    assert "| m | mrpc | nas | 0.8600 (1) | 0.5000 (1) | – | 10 (1) |" in text
