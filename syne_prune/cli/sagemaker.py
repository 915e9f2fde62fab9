"""``launcher_main``, the command line the scripts in ``launchers/`` share: SageMaker's options (defined, with the
settings they build, in ``syne_prune.aws``) and one job running ``syne-prune COMMAND``."""
from __future__ import annotations

import argparse
import sys

from syne_prune.aws import add_sagemaker_arguments, sagemaker_settings
from syne_prune.cli.options import HelpFormatter
from syne_prune.errors import SynePruneError
from syne_prune.search import launch_cli_job


class _LauncherFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """The launcher's docstring as written, option defaults shown."""


def launcher_main(command: str, description: str, argv: list[str] | None = None) -> int:
    """Start one SageMaker job running ``syne-prune COMMAND``: SageMaker options (and ``--job-name``) first, the
    command's own arguments after them (default: the process's arguments). Prints the job name and where its
    results land; returns the exit code, 2 with one ``error:`` line for bad input (nothing is started then)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_LauncherFormatter)
    parser.add_argument("--job-name", default=f"syne-prune-{command}", help="prefix of the SageMaker job name")
    add_sagemaker_arguments(parser)
    known, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    known.backend = "sagemaker"
    try:
        request = launch_cli_job(sagemaker_settings(known), [command, *rest], known.job_name)
    except SynePruneError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"started SageMaker job {request['TrainingJobName']} ({known.instance_type}); results: "
          f"{request['OutputDataConfig']['S3OutputPath']}{request['TrainingJobName']}/output/model.tar.gz")
    return 0

