"""Reads a full GLUE download (``--data-dir``, the GLUE TSV layout: TASK/train.tsv, TASK/dev.tsv) with
``syne_prune.data.load_task`` and checks that every row arrives: the row counts of the official splits, none lost to
CoLA's missing header, MRPC's byte-order mark or the stray quotes of RTE, MRPC, CoLA and STS-B. The tests read
committed slices of these files (tests/fixtures/glue); this checks the whole files.

    python benchmarks/glue_files.py --data-dir $GLUE_DIR
"""
from __future__ import annotations

import argparse
import json
import sys

# rows of the official GLUE train and dev splits
SIZES = {"rte": (2490, 277), "mrpc": (3668, 408), "cola": (8551, 1043), "stsb": (5749, 1500), "sst2": (67349, 872)}


def check(task: str, data_dir: str) -> dict:
    from syne_prune.data import load_task  # after argument parsing: --help stays fast

    data = load_task(task, data_dir)
    train, dev = len(data.train) + len(data.validation), len(data.test)
    return {"task": task, "train": train, "dev": dev, "ok": (train, dev) == SIZES[task]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="GLUE TSV files: TASK/train.tsv and TASK/dev.tsv")
    parser.add_argument("--tasks", nargs="+", default=list(SIZES), choices=list(SIZES))
    args = parser.parse_args(argv)
    results = [check(task, args.data_dir) for task in args.tasks]
    print(json.dumps(results, indent=1))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
