"""What every ``syne-prune`` command shares: the parser class and the help formatter. Options take their default
and type from the Python API (``syne_prune.options.add_option``)."""
from __future__ import annotations

import argparse
from typing import Any

from syne_prune.devices import DEVICE_CHOICES
from syne_prune.errors import SynePruneError
from syne_prune.precision import PRECISION_CHOICES


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Ends every option's help with "(default: VALUE)", "none" for an option unset by default. Left as
    written: flags, required options, and options whose help states its default itself (a default
    that depends on other options, or what "unset" means), as "(default: ...)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required or action.nargs == 0 or action.default is argparse.SUPPRESS or "default" in text.lower():
            return text
        return text + (" (default: none)" if action.default is None else " (default: %(default)s)")


class Parser(argparse.ArgumentParser):
    """The parser of the command and (inherited through ``add_subparsers``) of every subcommand: help with
    defaults (``HelpFormatter``) and one-line errors, exit code 2, like every other syne-prune error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            noun = action.dest.replace("_", " ")
            raise argparse.ArgumentError(action, f"unknown {noun} '{value}'; choose one of {', '.join(map(str, action.choices))}")

    def error(self, message: str) -> None:  # argparse prints the usage and exits; main prints one line
        raise SynePruneError(f"{message} (see: {self.prog} --help)")


def add_compute_options(parser: argparse.ArgumentParser, trains: bool = True) -> None:
    """``--device``, ``--precision`` and, for a command that ``trains``, ``--group-by-length``: where, in which arithmetic
    and on which batches a command trains and evaluates (``main`` runs the command inside ``devices.use_device``,
    ``precision.use_precision`` and ``data.use_group_by_length``)."""
    group = parser.add_argument_group("device and precision")
    group.add_argument("--device", default="auto", metavar="|".join(DEVICE_CHOICES),
                       help="where to train and evaluate: auto = the GPU when torch sees one, else the CPU; cuda = every "
                       "visible GPU (search workers spread over them), cuda:N = that GPU only")
    group.add_argument("--precision", default="auto", choices=PRECISION_CHOICES,
                       help="arithmetic of training and evaluation: auto = bf16 on a GPU that supports it, else fp32; "
                       "bf16/fp16 = autocast (fp16 with a gradient scaler), weights and checkpoints stay float32")
    if trains:
        group.add_argument("--group-by-length", action="store_true",
                           help="train on batches of examples of similar length (less padding, faster where lengths vary; the "
                           "epoch stays random, see syne_prune.data.length_grouped_order); default: off, a plain shuffle")
