"""benchmarks/baselines_vs_search.py --from-quality: a tiny fake benchmarks/quality.py workdir (only the files the
option reads, no weights, no training) stands in for the finetuned and ws-nas steps; an absent run falls back."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bvs = _load("baselines_vs_search")
quality_runs = _load("quality_runs")


def _checkpoint(directory: Path, **record) -> Path:
    directory.mkdir(parents=True)
    (directory / "supernet.json").write_text(json.dumps(record))
    return directory


def fake_quality_run(root: Path, task: str, seed: int, model: str = MODEL) -> Path:
    """DIR/<task>-seed<k>/ as quality.py leaves it: two references (the teacher row used lr 0.00015), supernet-teacher
    trained against it, search-teacher with three completed trials."""
    run = root / f"{task}-seed{seed}"
    common = {"task": task, "seed": seed}
    reference = _checkpoint(run / "reference-lr0.00015", model=model, strategy="standard", train_time_s=284.5, teacher=None, **common)
    _checkpoint(run / "reference-lr8e-05", model=model, strategy="standard", train_time_s=296.0, teacher=None, **common)
    supernet = _checkpoint(run / "supernet-teacher", model=str(reference), initialised_from=str(reference), strategy="full",
                           train_time_s=479.5, teacher={"source": str(reference), "path": str(reference)}, **common)
    search = run / "search-teacher"
    search.mkdir()
    (search / "summary.json").write_text(json.dumps({"supernet": str(supernet), "mode": "weight-sharing", "wallclock_s": 125.0, **common}))
    pd.DataFrame({"trial_id": [1, 2, 3], "status": ["completed"] * 3, "error": [0.20, 0.16, 0.30], "params": [0.53, 0.80, 0.40],
                  "test_error": [0.15, 0.13, 0.28], "fidelity": [1, 1, 1]}).to_csv(search / "trials.csv", index=False)
    pd.DataFrame({"wallclock_s": [6.0, 9.5, 125.0], "hypervolume": [0.37, 0.40, 0.41]}).to_csv(search / "hypervolume.csv", index=False)
    return run


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


def test_from_quality_links_steps_counts_times_and_falls_back(tmp_path, monkeypatch, capsys):
    quality = tmp_path / "quality"
    fake_quality_run(quality, "mrpc", 0)  # seed 1 has no quality run
    before = _snapshot(quality)
    commands = []

    def fake_call(command, **kwargs):  # what run_step would start: recorded, its output directory created, no training
        commands.append([str(c) for c in command])
        Path(command[command.index("--output") + 1]).mkdir(parents=True, exist_ok=True)
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    monkeypatch.setattr(bvs, "reachable_models", lambda scale: [MODEL])
    work, out = tmp_path / "work", tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["baselines_vs_search.py", "--tasks", "mrpc", "--seeds", "0", "1", "--methods", "ws-nas", "rfp",
                                      "--thresholds", "0.5,0.9", "--workdir", str(work), "--out-dir", str(out),
                                      "--anchors", str(tmp_path / "no-anchors"), "--from-quality", str(quality)])
    with pytest.raises(SystemExit) as exit_:
        bvs.main()
    assert exit_.value.code == 0
    seed0, seed1 = work / "all-MiniLM-L6-v2" / "mrpc" / "seed0", work / "all-MiniLM-L6-v2" / "mrpc" / "seed1"
    assert (seed0 / "finetuned").resolve() == (quality / "mrpc-seed0" / "reference-lr0.00015").resolve()
    assert (seed0 / "supernet").resolve() == (quality / "mrpc-seed0" / "supernet-teacher").resolve()
    assert (seed0 / "ws-nas").resolve() == (quality / "mrpc-seed0" / "search-teacher").resolve()
    assert not any((seed1 / name).is_symlink() for name in ("finetuned", "supernet", "ws-nas"))  # trained as before
    ran = [(c[c.index("syne_prune") + 1], Path(c[c.index("--output") + 1]).relative_to(work).as_posix()) for c in commands]
    assert ran == [("prune", "all-MiniLM-L6-v2/mrpc/seed0/rfp"),  # seed 0: only the baseline runs
                   ("train-supernet", "all-MiniLM-L6-v2/mrpc/seed1/finetuned"), ("train-supernet", "all-MiniLM-L6-v2/mrpc/seed1/supernet"),
                   ("search", "all-MiniLM-L6-v2/mrpc/seed1/ws-nas"), ("prune", "all-MiniLM-L6-v2/mrpc/seed1/rfp")]
    assert "no usable quality run for mrpc seed 1 (no directory" in capsys.readouterr().out
    assert _snapshot(quality) == before  # read in place, nothing written there
    sizes = pd.read_csv(out / "relative_to_model_size.csv", index_col=0)
    # runtime = reference fine-tune 284.5 + teacher super-network 479.5 + search 125.0 = 889.0 s; <= 0.5: trial 3, <= 0.9: trial 2
    assert sizes[["runtime", "threshold", "test_error", "valid_error", "method", "seed"]].values.tolist() == [
        [889.0, 0.5, 0.28, 0.30, "nas", 0], [889.0, 0.9, 0.13, 0.16, "nas", 0]]
    hv = pd.read_csv(out / "hypervolume.csv")
    assert hv[["method", "runtime", "hv"]].values.tolist() == [["nas", 770.0, 0.37], ["nas", 773.5, 0.40], ["nas", 889.0, 0.41]]
