"""Run a whole weight-sharing search inside ONE SageMaker job (tuning loop + pool backend on the instance).

The sensible mode when one evaluation costs seconds and a job takes minutes to start: a per-trial job
would spend almost all of its time starting. SageMaker options first, then every ``syne-prune search``
option; the local ``--supernet`` (and ``--data-dir``) are uploaded once as input channels, ``--output
NAME`` comes back as ``model.tar.gz`` with trials.csv, pareto.csv, pareto.png and summary.json.

    python launchers/sagemaker_search_in_one_job.py --role arn:aws:iam::123456789012:role/SageMakerRole \\
        --region us-east-1 --instance-type ml.g5.2xlarge --s3-prefix s3://my-bucket/syne-prune \\
        --supernet runs/mrpc-supernet --scheduler ehvi --max-trials 500 --n-workers 4 --output mrpc-search
"""
import sys

from syne_prune.cli.sagemaker import launcher_main

if __name__ == "__main__":
    sys.exit(launcher_main("search", __doc__))
