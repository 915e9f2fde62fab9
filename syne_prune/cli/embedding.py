"""``syne-prune evaluate-retrieval``: ``syne_prune.embedding.evaluate_retrieval`` of an embedding model (the unpruned one
or an export) on the user's (query, relevant text) pairs against a corpus."""
from __future__ import annotations

import argparse
import functools
import json
from typing import Any

from syne_prune.embedding import POOLING_MODES, evaluate_retrieval
from syne_prune.options import add_option, comma_list


def add_commands(commands: Any) -> None:
    """Add ``evaluate-retrieval`` to the ``syne-prune`` sub-command parsers."""
    parser = commands.add_parser(
        "evaluate-retrieval",
        help="recall@k and nDCG@10 of an embedding model on your (query, relevant text) pairs against a corpus",
        description="Embed every query and corpus text, rank the corpus by cosine similarity and report recall@k, nDCG@10 and "
        "MRR; for the unpruned model and any export of an embedding super-network.",
    )
    option = functools.partial(add_option, parser, evaluate_retrieval)
    parser.add_argument("--model", required=True, help="an embedding model: a sentence-transformers directory, an export, or a hub id when online")
    parser.add_argument("--queries", dest="queries_file", required=True, help="(query, relevant text) pairs: CSV, TSV, JSON, JSON Lines or Parquet")
    option("corpus_file", "the texts to retrieve from (the relevant texts are added when missing) (default: the relevant texts alone)",
           flag="--corpus")
    option("pooling", "pooling for a model without sentence-transformers files (default: read from its files)", choices=POOLING_MODES)
    parser.add_argument("--k", default="1,5,10", help="the k of recall@k, comma-separated")
    option("max_length", "tokens per text (longer ones are truncated)")
    option("batch_size", "texts per forward pass")
    option("query_column", "the queries' column")
    option("relevant_column", "the relevant texts' column")
    option("corpus_column", "the corpus file's text column")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(run=cmd_evaluate_retrieval)


def cmd_evaluate_retrieval(args: argparse.Namespace) -> int:
    result = evaluate_retrieval(args.model, args.queries_file, args.corpus_file, args.pooling, tuple(int(k) for k in comma_list(args.k)),
                                args.max_length, args.batch_size, args.query_column, args.relevant_column, args.corpus_column)
    if args.json:
        print(json.dumps(result))
        return 0
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith(("recall", "ndcg", "mrr")))
    print(f"{args.model}: {metrics} ({result['num_queries']} queries, corpus of {result['corpus_size']})")
    return 0
