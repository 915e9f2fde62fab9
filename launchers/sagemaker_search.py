"""A search with one SageMaker training job per trial; the tuning loop runs on this machine.

Weight-sharing (each job evaluates one sub-network of the shared super-network, mounted as the input
channel ``supernet``) or standard NAS (each job fine-tunes its own sub-network; per-trial
``checkpoint_s3_uri`` for pause/resume). Every ``syne-prune search`` option is accepted:

    python launchers/sagemaker_search.py --supernet runs/mrpc-supernet --scheduler morea --max-trials 200 \\
        --n-workers 8 --role arn:aws:iam::123456789012:role/SageMakerRole --region us-east-1 \\
        --instance-type ml.c5.2xlarge --s3-prefix s3://my-bucket/syne-prune --output runs/mrpc-search

    python launchers/sagemaker_search.py --trial-kind standard --model sentence-transformers/all-MiniLM-L6-v2 --task mrpc \\
        --data-dir glue --epochs 3 --max-wallclock 7200 --n-workers 8 --spot \\
        --role arn:aws:iam::123456789012:role/SageMakerRole --region us-east-1 --instance-type ml.g5.xlarge \\
        --s3-prefix s3://my-bucket/syne-prune --output runs/mrpc-standard
"""
import sys

from syne_prune.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", "--backend", "sagemaker", *sys.argv[1:]]))
