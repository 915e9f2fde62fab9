"""``syne-prune space``: a search space for a model (its hyperparameters, largest, smallest, midpoint, samples)."""
from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from syne_prune.models import get_family, load_model_config
from syne_prune.search_spaces import SEARCH_SPACES, get_search_space


def add_commands(commands: Any) -> None:
    """Add ``space`` to the ``syne-prune`` sub-command parsers."""
    space = commands.add_parser(
        "space",
        help="show a search space for a model: hyperparameters, largest/smallest/midpoint, samples",
        description="Print the Syne Tune config space of a search space for a model, as JSON.",
    )
    space.add_argument("--model", required=True, help="directory with config.json, or a hub id when online")
    space.add_argument("--search-space", required=True, choices=list(SEARCH_SPACES), help="the search space to show")
    space.add_argument("--samples", type=int, default=0, help="random configurations to print")
    space.add_argument("--seed", type=int, default=0, help="random seed of the samples")
    space.set_defaults(run=cmd_space)


def cmd_space(args: argparse.Namespace) -> int:
    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_family(model_config).shape(model_config))
    rng = np.random.RandomState(args.seed)
    listing = {
        "search_space": space.name,
        "hyperparameters": {name: str(domain) for name, domain in space.config_space.items()},
        "largest": space.largest(),
        "smallest": space.smallest(),
        "midpoint": space.midpoint(),
        "samples": [space.sample(rng) for _ in range(args.samples)],
    }
    print(json.dumps(listing, indent=2))
    return 0
