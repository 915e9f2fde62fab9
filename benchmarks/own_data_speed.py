"""Reading the user's own data costs little next to tokenizing it: the time to read, check and tokenize N
single-sentence rows from a CSV (``resolve_task`` + ``load_task`` + ``encode``, the path train-supernet takes)
against one batched call of the same fast tokenizer on the same texts, measured side by side in one process,
alternating, the median of ``--repeats``; with the peak memory (RSS) of the process after each part.

    python benchmarks/own_data_speed.py --rows 200000 --repeats 3 --output benchmarks/results/own_data_speed.json

The texts are generated (``syne_prune.data.synthetic_sentiment`` templates, 5 to 20 words); the tokenizer is
all-MiniLM-L6-v2's (the ``[demo]`` extra), max length 128.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _write_csv(path: Path, rows: int) -> list[str]:
    import pandas as pd

    from syne_prune.data import synthetic_sentiment

    train, _ = synthetic_sentiment(seed=0, num_train=rows, num_test=1)
    texts = train.texts[0]
    pd.DataFrame({"text": texts, "label": ["positive" if v else "negative" for v in train.labels]}).to_csv(path, index=False)
    return texts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the generated CSV")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each side (median reported)")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per example")
    parser.add_argument("--output", help="JSON file to write the result to (default: print only)")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from syne_prune.data import TaskSpec, encode, load_task, resolve_task
    from syne_prune.models.local_weights import resolve_model
    from syne_prune.quickstart import MODEL

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.csv"
        texts = _write_csv(path, args.rows)
        tokenizer(texts[:100], truncation=True, max_length=args.max_length)  # warm-up
        own, plain, memory = [], [], {}
        for _ in range(args.repeats):
            started = time.perf_counter()
            tokenizer(texts, truncation=True, max_length=args.max_length)
            plain.append(time.perf_counter() - started)
            memory["after_tokenizer_mb"] = _peak_rss_mb()
            started = time.perf_counter()
            task = resolve_task(TaskSpec(train_file=str(path)))
            data = load_task(task, validation_fraction=0.01)
            encode(data.train, tokenizer, args.max_length, task.is_regression)
            encode(data.validation, tokenizer, args.max_length, task.is_regression)
            own.append(time.perf_counter() - started)
            memory["after_own_data_mb"] = _peak_rss_mb()
    result = {
        "rows": args.rows, "repeats": args.repeats, "tokenizer_s": statistics.median(plain), "own_data_s": statistics.median(own),
        "ratio": statistics.median(own) / statistics.median(plain), "target_ratio": 1.2, "peak_rss_mb": memory,
        "all_tokenizer_s": plain, "all_own_data_s": own, "machine": platform.platform(), "python": platform.python_version(),
        "command": "python benchmarks/own_data_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
