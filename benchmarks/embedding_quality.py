"""How much of all-MiniLM-L6-v2's STS-B quality the pruned embedding models keep, and how much faster they embed.

Protocol (per seed):

1. **data**: the STS-B, SST-2 and MRPC training sentences of ``--data-dir`` (GLUE TSV layout), *without their labels*,
   deduplicated, are the sentences distilled on; the STS-B training pairs with their scores are the search's validation
   pairs; the STS-B dev pairs are the test.
2. **unpruned**: the STS-B dev Spearman of the cosine similarities of the unpruned model's embeddings.
3. **search**: an embedding super-network (``train-supernet --task-type embedding``, ``--strategy``, ``--epochs``),
   a weight-sharing search (``--scheduler``, ``--max-trials``), and per budget of ``--budgets`` (ratios of the
   *prunable encoder* parameters) the completed trial with the lowest validation error under it, exported, scored on
   STS-B dev before and after ``--recover-epochs`` of recovery (distillation on the same sentences).
4. **layer dropping**: the first k layers of the unpruned model, k the most that fits the budget, distilled with the
   same recovery (``recover_embedding``, ``--recover-epochs``): the baseline of the same distillation without search.
5. **throughput**: sentences per second of every recovered export and of the unpruned model at batch 1 and 32
   (``--threads`` threads, 64-token sentences) in PyTorch and in ONNX Runtime, all of the seed's models timed side by
   side, round-robin, the median of ``--throughput-rounds`` passes each, and the speedup per MAC reduction (speedup x
   MAC ratio); beside them the *floor*, every layer with one head and one neuron, whose time is what pruning heads and
   neurons cannot remove (``embedding_throughput.py``).

Targets: >= 98% / >= 95% of the unpruned model's dev Spearman at <= 50% / <= 33% of the encoder, speedup per MAC
reduction >= 0.85. Resumable: every stage writes into ``--workdir`` and reuses what is complete there; each seed's
results go to ``--output/seed{S}.json``, rewritten after every budget, with the ``protocol`` (the options that decide
the numbers; a workdir or result file of another protocol is refused, exit code 2) and ``stages_s``, the seconds of
super-network training (from its epochs) and of the search (from its trials), so both survive a resume; each
recovery's seconds are its candidate's ``recovery_s``.
``--group-by-length`` trains the super-network and every recovery on batches of similar length
(``syne_prune.data.length_grouped_order``).

    HF_HUB_OFFLINE=1 python benchmarks/embedding_quality.py --data-dir $GLUE_DIR --seeds 0 1 2
    # a tiny run that shows it works (minutes): --max-sentences 200 --max-pairs 100 --max-test-pairs 100 --epochs 1 --max-trials 6
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import embedding_throughput  # benchmarks/embedding_throughput.py, beside this file
import pandas as pd
import torch

from syne_prune.artifacts import SearchDir, SupernetDir
from syne_prune.data import TaskSpec, use_group_by_length
from syne_prune.embedding import (
    EmbeddingTrainingConfig,
    Pooling,
    export_embedding_subnetwork,
    load_encoder,
    pairs_spearman,
    read_pairs,
    recover_embedding,
    train_embedding_supernet,
)
from syne_prune.models import get_family, load_tokenizer, resolve_model
from syne_prune.objectives import subnet_size
from syne_prune.search import SearchConfig, WeightSharingSettings, export_from_search, run_search
from syne_prune.search_spaces import get_search_space

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TSV = {"sep": "\t", "quoting": 3, "encoding": "utf-8-sig", "on_bad_lines": "skip", "keep_default_na": False}


PROTOCOL = ("model", "strategy", "search_space", "epochs", "lr", "scheduler", "max_trials", "n_workers", "recover_epochs", "recover_lr",
            "max_sentences", "max_pairs", "max_test_pairs", "group_by_length", "threads")  # the options that decide the numbers
PROTOCOL_FILE = "protocol.json"


def protocol_of(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``PROTOCOL`` as given (JSON values)."""
    return {key: getattr(args, key) for key in PROTOCOL}


def check_protocol(where: Path, recorded: dict[str, Any] | None, wanted: dict[str, Any], option: str) -> None:
    """Exit with code 2 and one line when ``where`` holds results of another protocol than ``wanted`` (None: nothing
    recorded there yet)."""
    if recorded is None or recorded == wanted:
        return
    differing = ", ".join(f"{key} {recorded.get(key)!r} there, {wanted.get(key)!r} now" for key in sorted(set(recorded) | set(wanted))
                          if recorded.get(key) != wanted.get(key))
    print(f"error: {where} holds another protocol's results ({differing}); give another {option} or the same options", file=sys.stderr)
    raise SystemExit(2)


def prepare_data(data_dir: Path, workdir: Path, max_sentences: int | None, max_pairs: int | None, max_test_pairs: int | None) -> dict[str, Path]:
    """sentences.csv (text), pairs.csv and test.csv (sentence1, sentence2, score) in ``workdir``, written once."""
    paths = {name: workdir / f"{name}.csv" for name in ("sentences", "pairs", "test")}
    if all(p.is_file() for p in paths.values()):
        return paths
    workdir.mkdir(parents=True, exist_ok=True)
    sts = pd.read_csv(data_dir / "STS-B" / "train.tsv", **TSV)
    mrpc = pd.read_csv(data_dir / "MRPC" / "train.tsv", **TSV)
    sst = pd.read_csv(data_dir / "SST-2" / "train.tsv", **TSV)
    texts = [*sts["sentence1"], *sts["sentence2"], *sst["sentence"], *mrpc["#1 String"], *mrpc["#2 String"]]
    texts = list(dict.fromkeys(t.strip() for t in map(str, texts) if t.strip()))
    pd.DataFrame({"text": texts[:max_sentences]}).to_csv(paths["sentences"], index=False)
    pairs = sts[["sentence1", "sentence2", "score"]]
    pairs.iloc[:max_pairs].to_csv(paths["pairs"], index=False)
    dev = pd.read_csv(data_dir / "STS-B" / "dev.tsv", **TSV)[["sentence1", "sentence2", "score"]]
    dev.iloc[:max_test_pairs].to_csv(paths["test"], index=False)
    return paths


def dev_spearman(model_dir: str, test: Path, pooling: Pooling) -> float:
    """STS-B dev Spearman of the cosine similarities of ``model_dir``'s embeddings."""
    source = resolve_model(model_dir)
    return pairs_spearman(load_encoder(source), pooling, read_pairs(test), load_tokenizer(source), max_length=128)


EXPORT_PREFIX = {"search": "search", "layer_drop": "layerdrop"}  # candidate -> its export's folder in the seed's workdir


def recovered_dir(work: Path, candidate: str, budget_key: str) -> Path:
    """Where a candidate's recovered export of one budget lives (``search-0.50-recovered``, ``layerdrop-0.50-recovered``)."""
    return work / f"{EXPORT_PREFIX[candidate]}-{budget_key}-recovered"


def encoder_ratios(supernet: Path) -> pd.DataFrame:
    """The search's completed trials with their prunable-encoder parameter ratio."""
    trials = SearchDir(supernet.parent / "search").trials()
    trials = trials[trials["status"] == "completed"].copy()
    encoder = load_encoder(str(supernet))
    space = get_search_space(SupernetDir(supernet).read()["search_space"], get_family(encoder.config).shape(encoder.config))
    full = subnet_size(encoder).encoder_params
    trials["encoder_ratio"] = [subnet_size(encoder, space.to_mask({k: int(r[k]) for k in space.config_space})).encoder_params / full
                               for _, r in trials.iterrows()]
    return trials


def layer_drop_export(supernet: Path, budget: float, output: Path) -> Path | None:
    """The unpruned model's first k layers (k the most within ``budget`` of the encoder), exported as an embedding model."""
    if (output / "syne_prune.json").is_file():
        return output
    metadata = SupernetDir(supernet).read()
    model = load_encoder(resolve_model(metadata["model"]))
    shape = get_family(model.config).shape(model.config)
    space = get_search_space("small", shape)
    full = subnet_size(model).encoder_params
    fitting = [k for k in range(1, shape.num_layers + 1)
               if subnet_size(model, space.to_mask({"num_layers": k, "num_heads": shape.num_heads, "num_units": shape.num_neurons})).encoder_params
               <= budget * full + 1e-9]
    if not fitting:
        return None
    mask = space.to_mask({"num_layers": max(fitting), "num_heads": shape.num_heads, "num_units": shape.num_neurons})
    tokenizer = load_tokenizer(resolve_model(metadata["model"]))
    return export_embedding_subnetwork(model, mask, output, tokenizer, supernet, {"layers_kept": max(fitting)}, overwrite=True)


def recorded_result(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The seed's results so far from ``--output/seed{S}.json`` (a fresh record when there is none); exits with code 2
    when they were measured under another protocol (a file with budgets but no protocol counts as another one)."""
    result_path = args.output / f"seed{seed}.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else {"seed": seed, "budgets": {}}
    check_protocol(result_path, result.get("protocol", {} if result["budgets"] else None), protocol_of(args), "--output")
    return result


def run_seed(args: argparse.Namespace, seed: int, paths: dict[str, Path]) -> dict[str, Any]:
    work = args.workdir / f"seed{seed}"
    supernet = work / "supernet"
    result_path = args.output / f"seed{seed}.json"
    result = recorded_result(args, seed)
    result["protocol"] = protocol_of(args)
    stages = result.setdefault("stages_s", {})
    if not SupernetDir(supernet).is_complete():
        task = TaskSpec(train_file=str(paths["sentences"]), validation_file=str(paths["pairs"]), task_type="embedding")
        config = EmbeddingTrainingConfig(model=args.model, task=task, output=str(supernet), strategy=args.strategy, epochs=args.epochs,
                                         lr=args.lr, batch_size=32, max_length=128, seed=seed, search_space=args.search_space)
        train_embedding_supernet(config, resume=(supernet / ".resume" / "state.pt").is_file(), overwrite=not (supernet / ".resume").exists())
    stages["supernet"] = SupernetDir(supernet).read()["train_time_s"]
    pooling = Pooling.from_json(SupernetDir(supernet).read()["pooling"])
    if "unpruned" not in result:
        result["unpruned"] = {"dev_spearman": dev_spearman(args.model, paths["test"], pooling)}
        args.output.mkdir(parents=True, exist_ok=True)
        result_path.write_text(json.dumps(result, indent=2))
    if not SearchDir(work / "search").has_settings() or not (work / "search" / "summary.json").is_file():
        run_search(SearchConfig(trial_settings=WeightSharingSettings(str(supernet)), output=str(work / "search"), scheduler=args.scheduler,
                                max_trials=args.max_trials, n_workers=args.n_workers, seed=seed, reproducible=True),
                   resume=(work / "search").is_dir(), overwrite=False)
    trials = encoder_ratios(supernet)
    stages["search"] = float(SearchDir(work / "search").trials()["finished_s"].max())
    for budget in args.budgets:
        key = f"{budget:.2f}"
        if key in result["budgets"]:
            continue
        result["budgets"][key] = score_budget(args, work, supernet, trials, budget, pooling, paths, result["unpruned"])
        result_path.write_text(json.dumps(result, indent=2))
    if not embedding_throughput.is_timed(result, args.throughput_rounds, args.threads):  # also results timed another way
        exports = {f"{key}/{name}": recovered_dir(work, name, key) for key, entry in result["budgets"].items() for name in entry}
        embedding_throughput.measure(args, work, result, exports, pooling)
    result_path.write_text(json.dumps(result, indent=2))
    return result


def score_budget(args, work: Path, supernet: Path, trials: pd.DataFrame, budget: float, pooling: Pooling, paths, unpruned) -> dict[str, Any]:
    """The search's choice and the layer-dropping baseline at one budget: dev Spearman before and after recovery."""
    entry: dict[str, Any] = {}
    key = f"{budget:.2f}"
    eligible = trials[trials["encoder_ratio"] <= budget + 1e-9]
    candidates = {}
    if len(eligible):
        row = eligible.sort_values(["error", "params"]).iloc[0]
        exported = work / f"search-{key}"
        if not (exported / "syne_prune.json").is_file():
            export_from_search(work / "search", exported, trial_id=int(row["trial_id"]), overwrite=True)
        candidates["search"] = (exported, {"trial_id": int(row["trial_id"]), "encoder_ratio": float(row["encoder_ratio"]),
                                           "validation_error": float(row["error"]), "macs_ratio": float(row["macs"])})
    dropped = layer_drop_export(supernet, budget, work / f"layerdrop-{key}")
    if dropped is not None:
        candidates["layer_drop"] = (dropped, {"layers_kept": json.loads((dropped / "syne_prune.json").read_text())["layers_kept"],
                                              "macs_ratio": json.loads((dropped / "syne_prune.json").read_text())["macs_ratio"]})
    for name, (directory, info) in candidates.items():
        recovered = recovered_dir(work, name, key)
        if name == "search":
            info["dev_spearman_before_recovery"] = dev_spearman(str(directory), paths["test"], pooling)
        if not (recovered / "syne_prune.json").is_file():
            shutil.rmtree(recovered, ignore_errors=True)
            recover_embedding(directory, args.model, args.recover_epochs, recovered, lr=args.recover_lr, overwrite=True, seed=0)
        info["recovery_s"] = json.loads((recovered / "syne_prune.json").read_text())["recovery"]["train_time_s"]
        info["dev_spearman_after_recovery"] = dev_spearman(str(recovered), paths["test"], pooling)
        info["kept_after_recovery"] = info["dev_spearman_after_recovery"] / unpruned["dev_spearman"]
        entry[name] = info
    return entry


def build_parser() -> argparse.ArgumentParser:
    """The command line, with the protocol's defaults."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="GLUE TSV folders STS-B, SST-2, MRPC")
    parser.add_argument("--model", default=MODEL, help="the sentence-transformers model to prune")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of training and search")
    parser.add_argument("--budgets", type=float, nargs="+", default=[0.75, 0.5, 0.33], help="ratios of the prunable encoder parameters")
    parser.add_argument("--strategy", default="sandwich", help="super-network strategy")
    parser.add_argument("--search-space", default="small", help="search space")
    parser.add_argument("--epochs", type=int, default=3, help="super-network epochs")
    parser.add_argument("--lr", type=float, default=1e-4, help="super-network learning rate")
    parser.add_argument("--scheduler", default="ehvi", help="search scheduler")
    parser.add_argument("--max-trials", type=int, default=100, help="trials per search")
    parser.add_argument("--n-workers", type=int, default=2, help="search workers")
    parser.add_argument("--recover-epochs", type=int, default=1, help="recovery epochs of every export")
    parser.add_argument("--recover-lr", type=float, default=5e-5, help="recovery learning rate")
    parser.add_argument("--max-sentences", type=int, default=None, help="cap on the sentences distilled on (a tiny run)")
    parser.add_argument("--max-pairs", type=int, default=None, help="cap on the STS-B training pairs the search validates on")
    parser.add_argument("--max-test-pairs", type=int, default=None, help="cap on the STS-B dev pairs (a tiny run)")
    parser.add_argument("--threads", type=int, default=2, help="threads of training, evaluation and the throughput timing (torch and ONNX Runtime)")
    parser.add_argument("--workdir", type=Path, default=Path("embedding-quality-work"), help="where the stages write (reused on resume)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "results" / "embedding_quality", help="seed JSON files")
    parser.add_argument("--throughput-rounds", type=int, default=21, help="round-robin rounds of the side-by-side throughput timing")
    parser.add_argument("--group-by-length", action="store_true", help="train on batches of similar length (super-network and recovery)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    recorded = args.workdir / PROTOCOL_FILE
    check_protocol(args.workdir, json.loads(recorded.read_text()) if recorded.is_file() else None, protocol_of(args), "--workdir")
    for seed in args.seeds:  # every seed's result file checked before the workdir is touched
        recorded_result(args, seed)
    if importlib.util.find_spec("onnxruntime") is None:
        print("error: the throughput stage times ONNX Runtime too; pip install 'syne-prune[onnx]'", file=sys.stderr)
        raise SystemExit(2)
    paths = prepare_data(args.data_dir, args.workdir, args.max_sentences, args.max_pairs, args.max_test_pairs)
    recorded.write_text(json.dumps(protocol_of(args), indent=2))
    with use_group_by_length(args.group_by_length):
        for seed in args.seeds:
            result = run_seed(args, seed, paths)
            print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
