"""The ``syne-prune`` command: parses, calls the Python API, prints. Foreseeable errors are one line, exit 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from syne_prune.errors import SynePruneError
from syne_prune.search_spaces import SEARCH_SPACES


def _read_config(text: str) -> dict[str, Any]:
    """A configuration given inline as JSON or as the path of a JSON file."""
    source = text
    path = Path(text)
    if not text.lstrip().startswith("{"):
        if not path.is_file():
            raise SynePruneError(f"--config '{text}' is neither inline JSON nor an existing JSON file")
        source = path.read_text()
    try:
        config = json.loads(source)
    except json.JSONDecodeError as error:
        raise SynePruneError(f"--config is not valid JSON ({error.msg} at line {error.lineno}); give an object like '{{\"num_layers\": 4}}'") from None
    if not isinstance(config, dict):
        raise SynePruneError("--config must be a JSON object mapping hyperparameter names to values")
    return config


def cmd_export(args: argparse.Namespace) -> int:
    from syne_prune.export import export_subnetwork, load_model, load_model_config, load_tokenizer
    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space

    config = _read_config(args.config)
    output = Path(args.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not args.overwrite:
        raise SynePruneError(f"output '{output}' already exists; choose a new --output or pass --overwrite")
    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_architecture(model_config).shape(model_config))
    mask = space.to_mask(config)  # checked before the weights are loaded
    model = load_model(args.model)
    export_subnetwork(
        model,
        mask,
        output,
        tokenizer=load_tokenizer(args.model),
        onnx=args.onnx,
        overwrite=args.overwrite,
        metadata={"search_space": space.name, "config": space.validate(config)},
    )
    summary = json.loads((output / "syne_prune.json").read_text())
    print(
        f"exported to {output}: {summary['params']:,} parameters ({summary['params_ratio']:.1%} of the model, "
        f"{summary['encoder_params_ratio']:.1%} of the prunable encoder), {summary['macs_ratio']:.1%} of the MACs"
        + (", with model.onnx" if args.onnx else "")
    )
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    import numpy as np

    from syne_prune.export import load_model_config
    from syne_prune.models import get_architecture
    from syne_prune.search_spaces import get_search_space

    model_config = load_model_config(args.model)
    space = get_search_space(args.search_space, get_architecture(model_config).shape(model_config))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syne-prune",
        description="Structural pruning of pre-trained language models as multi-objective NAS (Syne Tune).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export = commands.add_parser(
        "export",
        help="write one sub-network as a smaller model that from_pretrained loads",
        description="Extract the sub-network given by a search-space configuration and save it (safetensors, "
        "config, tokenizer, optional ONNX). Uniform sub-networks get a stock transformers config; others a "
        "config whose modeling code travels in the directory (load with trust_remote_code=True, or after "
        "`import syne_prune`).",
    )
    export.add_argument("--model", required=True, help="directory of the (super-)network, or a hub id when online")
    export.add_argument("--search-space", required=True, choices=list(SEARCH_SPACES), help="how --config is encoded")
    export.add_argument("--config", required=True, help="the configuration: inline JSON or a JSON file")
    export.add_argument("--output", required=True, help="directory to create")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx (opset 18), checked against PyTorch")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    export.set_defaults(run=cmd_export)

    space = commands.add_parser(
        "space",
        help="show a search space for a model: hyperparameters, largest/smallest/midpoint, samples",
        description="Print the Syne Tune config space of a search space for a model, as JSON.",
    )
    space.add_argument("--model", required=True, help="directory with config.json, or a hub id when online")
    space.add_argument("--search-space", required=True, choices=list(SEARCH_SPACES))
    space.add_argument("--samples", type=int, default=0, help="random configurations to print")
    space.add_argument("--seed", type=int, default=0)
    space.set_defaults(run=cmd_space)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SynePruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
