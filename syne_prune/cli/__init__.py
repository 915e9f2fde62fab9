"""The ``syne-prune`` command: parses, calls the Python API, prints. Foreseeable errors are one line, exit 2.

One module per command group, each with ``add_commands(commands)``; option defaults come from the API's
dataclasses and keyword parameters (``options.add_option``), choices from its registries."""
from __future__ import annotations

import argparse
import sys

from syne_prune.cli import blackbox, embedding, export, prune, quickstart, recover, search, space, train
from syne_prune.cli.export import recovery_teacher
from syne_prune.cli.options import HelpFormatter, Parser, add_compute_options
from syne_prune.data import use_group_by_length
from syne_prune.devices import use_device
from syne_prune.errors import SynePruneError
from syne_prune.files import is_write_failure, write_failure
from syne_prune.precision import resolve_precision, use_precision
from syne_prune.versions import __version__

COMMAND_GROUPS = (export, recover, prune, train, search, quickstart, space, blackbox, embedding)  # in the order --help lists them
TRAINING_COMMANDS = ("export", "recover", "prune", "train-supernet", "search", "quickstart")  # also take --group-by-length
COMPUTE_COMMANDS = (*TRAINING_COMMANDS, "blackbox record", "evaluate-retrieval")  # take --device, --precision


def build_parser() -> Parser:
    """The ``syne-prune`` parser: one sub-command parser per command, each with ``run`` set to its function."""
    parser = Parser(
        prog="syne-prune",
        description="Structural pruning of pre-trained language models as multi-objective NAS (Syne Tune).",
    )
    parser.add_argument("--version", action="version", version=f"syne-prune {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    for name, command in _commands(parser):
        if name in COMPUTE_COMMANDS:
            add_compute_options(command, trains=name in TRAINING_COMMANDS)
    return parser


def _commands(parser, prefix: str = ""):
    """``(name, parser)`` of every command and sub-command under ``parser`` ("blackbox record")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield f"{prefix}{name}", command
                yield from _commands(command, f"{prefix}{name} ")


def main(argv: list[str] | None = None) -> int:
    """Run ``syne-prune`` on ``argv`` (default: the process's arguments); returns the exit code, 2 for a
    ``SynePruneError`` (printed as one ``error:`` line on stderr) and for a failed file operation anywhere (an
    ``OSError``, or torch/safetensors saying a write failed: ``files.write_failure``, one line naming the path and
    the cause; the writes clean up their temporary files themselves)."""
    args = None
    try:
        args = build_parser().parse_args(argv)
        with (use_device(getattr(args, "device", None)) as device, use_precision(getattr(args, "precision", None)),
              use_group_by_length(getattr(args, "group_by_length", False))):
            resolve_precision(None, device)  # a precision the device cannot run fails here, in one line
            return args.run(args)
    except SynePruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if not is_write_failure(error):
            raise
        print(f"error: {write_failure(error, getattr(args, 'output', None))}", file=sys.stderr)
        return 2


__all__ = ["COMMAND_GROUPS", "HelpFormatter", "Parser", "recovery_teacher", "build_parser", "main"]
