"""Blackbox of evaluated sub-networks: record (tiny super-network, real RTE slice), replay in Syne Tune's
simulator, report; numbers compared with a direct Evaluator call and with a real search."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from syne_prune.blackbox import RecordConfig, read_blackbox, record_from_trials, record_samples
from syne_prune.blackbox.benchmark import BenchmarkConfig, run_benchmark
from syne_prune.blackbox.record import draw_configurations
from syne_prune.blackbox.simulate import SubnetworkBlackbox, replay
from syne_prune.blackbox.surrogate import Surrogate
from syne_prune.errors import SynePruneError
from syne_prune.search import subnetwork_key

SAMPLES, LEVELS = 12, 3


@pytest.fixture(scope="module")
def recorded(supernets, tmp_path_factory):
    config = RecordConfig(supernet=str(supernets["bert"]), output=str(tmp_path_factory.mktemp("bb") / "bb"), samples=SAMPLES,
                          seed=0, fidelity_levels=LEVELS, eval_batch_size=8)
    summary = record_samples(config, progress=False)
    return config, summary


def _evaluator(config: RecordConfig):
    from syne_prune.search.trial import Evaluator, TrialSettings

    return Evaluator(TrialSettings(supernet=config.supernet, objectives=("error", "params", "macs"), fidelity_levels=config.fidelity_levels,
                                   eval_batch_size=config.eval_batch_size))


def test_record_equals_a_direct_evaluator_call(recorded):
    config, summary = recorded
    assert summary["recorded"] == SAMPLES and summary["skipped"] == 0 and summary["rows"] == SAMPLES
    blackbox = read_blackbox(config.output, config.supernet)
    rows = blackbox.rows
    space = blackbox.space()
    assert len(rows) == SAMPLES and blackbox.levels == LEVELS
    assert rows[blackbox.names].head(3).to_dict("records") == space.initial_points()  # largest, smallest, midpoint first
    assert len({subnetwork_key(space, c) for c in rows[blackbox.names].to_dict("records")}) == SAMPLES  # distinct masks
    assert rows["params"].iloc[0] == pytest.approx(1.0) and (rows["eval_s"] > 0).all()
    evaluator = _evaluator(config)
    for index in (0, 2, 7):
        row = rows.iloc[index]
        cfg = {n: int(row[n]) for n in blackbox.names}
        errors: list[float] = []
        last = evaluator.evaluate(cfg, lambda r, seen=errors: seen.append(r["error"]))
        assert errors == [row[f"valid_error_{k}"] for k in range(1, LEVELS + 1)]  # exactly, every fidelity level
        assert (last["params"], last["macs"]) == (row["params"], row["macs"])
        assert evaluator.test_error(cfg) == row["test_error"]
    header = json.loads((Path(config.output) / "blackbox.json").read_text())
    assert header["format_version"] == 1 and header["task"] == "rte" and header["search_space"] == "medium"
    assert header["supernet"]["sha256"] == hashlib.sha256((Path(config.supernet) / "supernet.json").read_bytes()).hexdigest()


def test_record_resumes_and_skips_recorded(recorded, tmp_path):
    config, _ = recorded
    copy = tmp_path / "bb"
    shutil.copytree(config.output, copy)
    before = (copy / "evaluations.csv").read_bytes()
    summary = record_samples(replace(config, output=str(copy), samples=SAMPLES + 3), progress=False)
    assert (summary["recorded"], summary["skipped"], summary["rows"]) == (3, SAMPLES, SAMPLES + 3)
    assert (copy / "evaluations.csv").read_bytes().startswith(before)  # recorded rows untouched, three appended
    with pytest.raises(SynePruneError, match="other settings"):
        record_samples(replace(config, output=str(copy), fidelity_levels=LEVELS + 1), progress=False)
    assert len(read_blackbox(copy).rows) == SAMPLES + 3


def test_a_blackbox_keeps_its_precision_and_refuses_rows_of_another(recorded, tmp_path):
    from syne_prune.precision import use_precision

    config, _ = recorded
    assert read_blackbox(config.output).header["compute"] == {"precision": "fp32", "device": "cpu"}
    copy = tmp_path / "bb"
    shutil.copytree(config.output, copy)
    before = (copy / "evaluations.csv").read_bytes()
    with use_precision("bf16"), pytest.raises(SynePruneError, match=r"other settings \(precision fp32: add with --precision fp32\)"):
        record_samples(replace(config, output=str(copy), samples=SAMPLES + 3), progress=False)
    assert (copy / "evaluations.csv").read_bytes() == before  # nothing added


def test_uniform_samples_are_not_the_stream_of_random_search_with_the_same_seed():
    """The recording's uniform samples (after largest, smallest, midpoint) share none of the first 40
    sub-networks random search draws with the same seed; the legacy stream 1 was exactly that stream."""
    from syne_prune.models.shape import EncoderShape
    from syne_prune.search.syne_tune_fixes import _seeded_sample_random_config
    from syne_prune.search_spaces import get_search_space

    space = get_search_space("small", EncoderShape(num_layers=6, num_heads=12, num_neurons=1536, hidden_size=384))
    state = np.random.RandomState(7)
    searched = [subnetwork_key(space, _seeded_sample_random_config(space.config_space, state)) for _ in range(200)]
    drawn = [subnetwork_key(space, c) for c in draw_configurations(space, 43, 7)[3:]]
    legacy = [subnetwork_key(space, c) for c in draw_configurations(space, 43, 7, stream=1)[3:]]
    assert len(set(drawn)) == 40 and not set(drawn) & set(searched[:40])
    initial = {subnetwork_key(space, c) for c in space.initial_points()}
    distinct = [k for i, k in enumerate(searched) if k not in initial and k not in searched[:i]]  # as the recording dedups
    assert legacy == distinct[:40]


def test_a_blackbox_without_sample_stream_resumes_on_the_legacy_stream(recorded, tmp_path):
    config, _ = recorded
    copy = tmp_path / "bb"
    shutil.copytree(config.output, copy)
    header = json.loads((copy / "blackbox.json").read_text())
    assert header["sample_stream"] == 2
    del header["sample_stream"]
    (copy / "blackbox.json").write_text(json.dumps(header))
    table = read_blackbox(copy)
    space = table.space()
    expected = {subnetwork_key(space, c) for c in table.rows[table.names].to_dict("records")}
    expected |= {subnetwork_key(space, c) for c in draw_configurations(space, SAMPLES + 2, config.seed, stream=1)}
    record_samples(replace(config, output=str(copy), samples=SAMPLES + 2), progress=False)
    after = read_blackbox(copy)
    assert {subnetwork_key(space, c) for c in after.rows[after.names].to_dict("records")} == expected


def test_recorded_configurations_return_their_recorded_values(recorded, tmp_path):
    config, _ = recorded
    table = read_blackbox(config.output)
    for multi in (False, True):
        blackbox = SubnetworkBlackbox(table, Surrogate(table, "knn"), multi)
        for row in table.rows.to_dict("records"):
            cfg = {n: row[n] for n in table.names}
            values = blackbox.objective_function(cfg)
            levels = range(1, LEVELS + 1) if multi else [LEVELS]
            assert values[:, 0].tolist() == [row[f"valid_error_{k}"] for k in levels]
            assert values[-1, 4] == row["eval_s"] and (values[:, 5] == 1.0).all()
            sizes = blackbox.sizes(cfg)  # the exact size formula agrees with what the Evaluator measured
            assert sizes["params"] == pytest.approx(row["params"], abs=1e-12) and sizes["macs"] == pytest.approx(row["macs"], abs=1e-12)
    trials = replay(table, Surrogate(table, "rf"), "random", 0, ["error", "params"], 2, 20, None, str(tmp_path / "st"))
    assert len(trials) == 20
    by_key = {subnetwork_key(table.space(), r): r for r in table.rows.to_dict("records")}
    hits = 0
    for trial in trials.to_dict("records"):
        row = by_key.get(subnetwork_key(table.space(), {n: trial[n] for n in table.names}))
        assert (row is not None) == (trial["recorded"] == 1.0)
        if row is not None:
            hits += 1
            assert (trial["error"], trial["params"], trial["macs"]) == (row[f"valid_error_{LEVELS}"], row["params"], row["macs"])
    assert hits >= 3  # at least the initial largest, smallest, midpoint
    assert (np.diff(trials.sort_values("end_s")["end_s"]) >= 0).all()


def test_replay_is_deterministic_and_reported(recorded, tmp_path):
    config, _ = recorded
    outputs = []
    for name in ("a", "b"):
        bench = BenchmarkConfig(blackbox=config.output, output=str(tmp_path / name), schedulers=("random", "moasha", "local_search"),
                                seeds=2, max_trials=10, n_workers=2, supernet=config.supernet, jobs=1)  # --jobs 2: below
        outputs.append((tmp_path / name, run_benchmark(bench, progress=False)))
    (a, summary), (b, _) = outputs
    csvs = sorted(p.relative_to(a) for p in a.rglob("*.csv") if "syne-tune" not in p.parts)
    assert len(csvs) >= 12
    for rel in csvs:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "hypervolume.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "| moasha |" in (a / "report.md").read_text()
    final = pd.read_csv(a / "final.csv")
    assert len(final) == 6 and (final["hypervolume"] > 0).all()
    moasha = pd.read_csv(a / "runs" / "moasha" / "seed-0.csv")
    assert set(moasha["fidelity"]) <= set(range(1, LEVELS + 1)) and len(moasha) == 10
    held_out = pd.read_csv(a / "surrogate.csv")
    assert set(held_out["surrogate"]) == {"knn", "rf"}
    # per target: both candidates over all recorded rows; a prediction of either is a weighted mean of recorded values,
    # so its mean absolute error is at most the target's range; normalised by the target's (population) spread
    rows = read_blackbox(config.output, config.supernet).rows
    targets = [f"valid_error_{k}" for k in range(1, LEVELS + 1)] + ["eval_s", "test_error"]
    assert sorted(zip(held_out["target"], held_out["surrogate"])) == sorted((t, s) for t in targets for s in ("knn", "rf"))
    for row in held_out.itertuples():
        truth = rows[row.target].to_numpy(dtype=float)
        assert row.rows == SAMPLES == np.isfinite(truth).sum()
        assert 0 <= row.mae <= truth.max() - truth.min(), row
        assert row.normalised_mae == pytest.approx(row.mae / truth.std() if truth.std() > 0 else 0.0, rel=1e-8), row
    assert summary["surrogate"] == held_out.groupby("surrogate")["normalised_mae"].mean().idxmin()
    random_hv = pd.read_csv(a / "hypervolume_over_trials.csv").query("scheduler == 'random'")["mean"]
    assert (np.diff(random_hv) >= 0).all()  # the hypervolume never falls


def test_surrogate_none_starts_only_recorded_configurations(recorded, tmp_path):
    config, _ = recorded
    table = read_blackbox(config.output)
    keys = {subnetwork_key(table.space(), r) for r in table.rows[table.names].to_dict("records")}
    for scheduler in ("random", "morea", "nsga2", "local_search", "moasha", "ehvi"):
        budget = 5 if scheduler == "ehvi" else SAMPLES + 5  # EHVI: ~1-5 s per suggestion on 2 busy cores
        trials = replay(table, None, scheduler, 1, ["error", "params"], 1, budget, None, str(tmp_path / "st"))
        assert len(trials) == min(budget, SAMPLES) and (trials["recorded"] == 1.0).all(), scheduler  # ends when the table is used up
        started = [subnetwork_key(table.space(), {n: r[n] for n in table.names}) for r in trials.to_dict("records")]
        assert set(started) <= keys and len(set(started)) == len(started), scheduler


@pytest.mark.slow
def test_real_search_and_its_replay_agree(supernets, tmp_path):
    from syne_prune.search import SearchConfig, WeightSharingSettings, run_search

    search = SearchConfig(trial_settings=WeightSharingSettings(str(supernets["bert"])), output=str(tmp_path / "search"), scheduler="morea", n_workers=1,
                          max_trials=8, seed=3, eval_batch_size=8)
    run_search(search, progress=False)
    summary = record_from_trials([search.output], str(tmp_path / "bb"))
    assert summary["recorded"] == 8
    table = read_blackbox(tmp_path / "bb", supernets["bert"])
    real = pd.read_csv(tmp_path / "search" / "trials.csv").sort_values("trial_id")
    replayed = replay(table, Surrogate(table, "knn"), "morea", 3, ["error", "params"], 1, 8, None, str(tmp_path / "st"))
    names = table.names
    assert replayed[names].to_dict("records") == real[names].to_dict("records")  # same trials, same order
    assert replayed["error"].tolist() == real["error"].tolist() and replayed["params"].tolist() == real["params"].tolist()
    assert (replayed["recorded"] == 1.0).all()


def _write_header(path: Path, change) -> None:
    header = json.loads((path / "blackbox.json").read_text())
    change(header)
    (path / "blackbox.json").write_text(json.dumps(header))


BAD_FILES = {
    "not JSON": (lambda p: (p / "blackbox.json").write_text("{broken"), "not valid JSON"),
    "format version": (lambda p: _write_header(p, lambda h: h.update(format_version=99)), "format version 99"),
    "missing column": (lambda p: pd.read_csv(p / "evaluations.csv").drop(columns="macs").to_csv(p / "evaluations.csv", index=False), "lacks column"),
    "NaN": (lambda p: pd.read_csv(p / "evaluations.csv").assign(valid_error_2=lambda f: f["valid_error_2"].where(f.index != 4)).to_csv(
        p / "evaluations.csv", index=False), "row 6 has a missing"),
    "space": (lambda p: _write_header(p, lambda h: h.update(search_space="small")), "search space"),
    "duplicate": (lambda p: pd.concat([pd.read_csv(p / "evaluations.csv")] * 2).to_csv(p / "evaluations.csv", index=False), "repeats"),
}


@pytest.mark.parametrize("defect", [*BAD_FILES, "other super-network"])
def test_bad_blackbox_is_refused(recorded, supernets, tmp_path, capsys, defect):
    from syne_prune.cli import main

    config, _ = recorded
    bad = tmp_path / "bb"
    shutil.copytree(config.output, bad)
    supernet, match = config.supernet, "another super-network"
    if defect in BAD_FILES:
        damage, match = BAD_FILES[defect]
        damage(bad)
    else:
        supernet = str(supernets["roberta"])
    with pytest.raises(SynePruneError, match=match):
        read_blackbox(bad, supernet)
    out = tmp_path / "bench"
    code = main(["benchmark", "--blackbox", str(bad), "--supernet", supernet, "--max-trials", "5", "--seeds", "1", "--output", str(out)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("error: ") and "\n" not in error and not out.exists()


def _replay_files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted((directory / "runs").rglob("seed-*.csv"))}


@pytest.mark.slow
def test_parallel_replays_equal_sequential_ones_and_resume_with_other_jobs(recorded, tmp_path, capsys):
    """--jobs 1 and --jobs 2 give the same bytes (EHVI's GP suggestions included: trials 4-5 of each replay);
    a replay failing in a worker raises the error of the same replay in this process, the finished ones stay;
    a re-run with another --jobs continues."""
    config, _ = recorded
    common = dict(blackbox=config.output, schedulers=("random", "ehvi"), seeds=2, max_trials=5, n_workers=1, supernet=config.supernet)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # the replays in this process run with one torch thread, then the caller's two are back
        sequential = run_benchmark(BenchmarkConfig(output=str(tmp_path / "one"), jobs=1, **common), progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    one = _replay_files(tmp_path / "one")
    assert list(one) == ["runs/ehvi/seed-0.csv", "runs/ehvi/seed-1.csv", "runs/random/seed-0.csv", "runs/random/seed-1.csv"]
    assert all(len(pd.read_csv(tmp_path / "one" / name)) == 5 for name in one)
    assert "jobs" not in json.loads((tmp_path / "one" / "benchmark.json").read_text())

    out = tmp_path / "two"  # the same settings (jobs is none of them), with random seed 1's Syne Tune folder blocked by a file
    (out / "syne-tune").mkdir(parents=True)
    shutil.copy(tmp_path / "one" / "benchmark.json", out / "benchmark.json")
    (out / "syne-tune" / "random-seed-1").write_text("in the way")
    errors = []
    for jobs in (2, 1):  # in a worker (ehvi's replays first, then random's), then the same replay in this process
        with pytest.raises(Exception) as raised:
            run_benchmark(BenchmarkConfig(output=str(out), jobs=jobs, **common), progress=False)
        errors.append((type(raised.value), str(raised.value)))
    assert errors[0] == errors[1] and "random-seed-1" in errors[0][1]
    two = _replay_files(out)
    assert two == {k: v for k, v in one.items() if k != "runs/random/seed-1.csv"}  # the finished ones kept, byte-identical
    kept = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted((out / "runs").rglob("seed-*"))}
    assert len(kept) == 6

    (out / "syne-tune" / "random-seed-1").unlink()
    resumed = run_benchmark(BenchmarkConfig(output=str(out), jobs=1, **common), progress=False)
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in kept} == kept  # not replayed again
    assert _replay_files(out) == one
    again = run_benchmark(BenchmarkConfig(output=str(out), jobs=2, **common), progress=False)  # nothing left to replay: only the report
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in kept} == kept
    hypervolumes = [{s: v["hypervolume"] for s, v in summary["schedulers"].items()} for summary in (sequential, resumed, again)]
    assert hypervolumes[0] == hypervolumes[1] == hypervolumes[2] and set(hypervolumes[0]) == {"random", "ehvi"} and min(hypervolumes[0].values()) > 0

    from syne_prune.cli import main

    code = main(["benchmark", "--blackbox", config.output, "--max-trials", "5", "--jobs", "0", "--output", str(tmp_path / "bad")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error == "error: --seeds, --n-workers and --jobs must be at least 1 (got 10, 1, 0)" and not (tmp_path / "bad").exists()
