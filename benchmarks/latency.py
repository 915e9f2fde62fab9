"""CPU latency of exported sub-networks against the full model, and speedup per MAC reduction.

Sub-networks keep every layer and a fraction f of the heads and FFN neurons of each (the medium
space's uniform configurations), so they hold ~f of the prunable encoder parameters. Each one is
exported with syne-prune and reloaded with from_pretrained, exactly as a user gets it. Models are
timed round-robin (full, 75%, 50%, 25%, full, ...) so that drift on a shared machine hits all
alike; the table reports medians.

    python benchmarks/latency.py --threads 2 --repeats 7 --out benchmarks/results/latency.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    BertConfig,
    DebertaV2Config,
    ElectraConfig,
    ModernBertConfig,
    XLMRobertaConfig,
)

from syne_prune import get_family, get_search_space
from syne_prune.export import export_subnetwork
from syne_prune.models import load_model
from syne_prune.objectives import subnet_size

FRACTIONS = (1.0, 0.75, 0.5, 0.25)
# Randomly initialised models of each family's base size (latency does not depend on the weights' values), as the
# families' published base configurations give them; minilm is the real all-MiniLM-L6-v2 (syne-prune[demo]).
BASE_CONFIGS = {
    "bert-base": BertConfig,  # 12 layers, 12 heads, hidden 768, FFN 3072
    "modernbert-base": ModernBertConfig,  # 22 layers, 12 heads, hidden 768, gated FFN 2 x 1152, local/global attention
    "deberta-v3-base": lambda: DebertaV2Config(  # 12 layers, 12 heads, hidden 768, FFN 3072, disentangled attention
        vocab_size=128100, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
        relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=256, max_relative_positions=-1, norm_rel_ebd="layer_norm",
        share_att_key=True, position_biased_input=False, type_vocab_size=0),
    "xlm-roberta-base": lambda: XLMRobertaConfig(vocab_size=250002, max_position_embeddings=514, type_vocab_size=1,
                                                 pad_token_id=1, bos_token_id=0, eos_token_id=2),
    "electra-base": lambda: ElectraConfig(embedding_size=768, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                          intermediate_size=3072),
}


def load_benchmark_model(name: str):
    """The model ``name`` (``minilm`` or a key of ``BASE_CONFIGS``), in eval mode."""
    if name == "minilm":
        return load_model("sentence-transformers/all-MiniLM-L6-v2")
    return AutoModel.from_config(BASE_CONFIGS[name]()).eval()


def uniform_config(space, fraction: float) -> dict[str, int]:
    shape = space.shape
    heads, units = max(1, round(fraction * shape.num_heads)), max(1, round(fraction * shape.num_neurons))
    return {name: heads if name.startswith("num_heads") else units for name in space.config_space}


@torch.inference_mode()
def time_once(model, input_ids, attention_mask) -> float:
    start = time.perf_counter()
    model(input_ids=input_ids, attention_mask=attention_mask)
    return (time.perf_counter() - start) * 1000


def benchmark(name: str, model, batch_sizes, seq_len: int, repeats: int, workdir: Path) -> list[dict]:
    shape = get_family(model.config).shape(model.config)
    space = get_search_space("medium", shape)
    full_size = subnet_size(model, seq_len=seq_len)
    subnets = []
    for fraction in FRACTIONS:
        mask = space.to_mask(uniform_config(space, fraction))
        out = export_subnetwork(model, mask, workdir / f"{name}-{fraction}")
        size = subnet_size(model, mask, seq_len=seq_len)
        subnets.append((fraction, size, AutoModel.from_pretrained(out).eval()))
    rows = []
    for batch_size in batch_sizes:
        input_ids = torch.randint(1000, 20000, (batch_size, seq_len))
        attention_mask = torch.ones_like(input_ids)
        times: dict[float, list[float]] = {f: [] for f in FRACTIONS}
        for fraction, _, sub in subnets:  # warm-up
            time_once(sub, input_ids, attention_mask)
        for _ in range(repeats):
            for fraction, _, sub in subnets:
                times[fraction].append(time_once(sub, input_ids, attention_mask))
        full_ms = statistics.median(times[1.0])
        for fraction, size, _ in subnets:
            median_ms = statistics.median(times[fraction])
            speedup = full_ms / median_ms
            mac_reduction = full_size.macs / size.macs
            rows.append(
                {
                    "model": name,
                    "batch_size": batch_size,
                    "seq_len": seq_len,
                    "fraction": fraction,
                    "encoder_params_ratio": size.encoder_params / full_size.encoder_params,
                    "params_ratio": size.params / full_size.params,
                    "macs_ratio": size.macs / full_size.macs,
                    "median_ms": median_ms,
                    "times_ms": times[fraction],
                    "speedup": speedup,
                    "speedup_per_mac_reduction": speedup / mac_reduction,
                }
            )
            print(
                f"{name:10s} b={batch_size:<3d} f={fraction:.2f} enc-params={rows[-1]['encoder_params_ratio']:.3f} "
                f"MACs={rows[-1]['macs_ratio']:.3f} median={median_ms:9.1f} ms speedup={speedup:5.2f} "
                f"speedup/MAC-reduction={rows[-1]['speedup_per_mac_reduction']:.2f}",
                flush=True,
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--models", nargs="+", default=["minilm", "bert-base"], choices=["minilm", *BASE_CONFIGS])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latency.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    meta = {"threads": args.threads, "repeats": args.repeats, "torch": torch.__version__, "command": "python benchmarks/latency.py " + " ".join(
        f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items())}
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            rows += benchmark(name, load_benchmark_model(name), args.batch_sizes, args.seq_len, args.repeats, Path(tmp))
            args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")  # as each model finishes


if __name__ == "__main__":
    main()
