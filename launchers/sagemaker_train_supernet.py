"""Train a super-network as one SageMaker training job (e.g. on a GPU instance).

SageMaker options first, then every ``syne-prune train-supernet`` option. A local ``--model`` and
``--data-dir`` are uploaded once as input channels; ``--output NAME`` is written to the job's model
directory and lands in S3 as ``model.tar.gz`` (the path is printed). Unpack it and pass the directory
to ``syne-prune search --supernet`` (or upload it once more by searching with ``--backend sagemaker``).

    python launchers/sagemaker_train_supernet.py --role arn:aws:iam::123456789012:role/SageMakerRole \\
        --region us-east-1 --instance-type ml.g5.xlarge --s3-prefix s3://my-bucket/syne-prune \\
        --model sentence-transformers/all-MiniLM-L6-v2 --task mrpc --data-dir glue --search-space small \\
        --strategy full --epochs 5 --output mrpc-supernet
"""
import sys

from syne_prune.cli.sagemaker import launcher_main

if __name__ == "__main__":
    sys.exit(launcher_main("train-supernet", __doc__))
