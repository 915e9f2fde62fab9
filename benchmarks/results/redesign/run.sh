#!/usr/bin/env bash
# issue 15: pool-vs-local and suggestion time, before (ca0a746, /work/wt/bench) and after (main) the redesign
set -x
export HF_HUB_OFFLINE=1
PY=/work/main/.venv/bin/python
R=/work/runs/redesign
cd /work/main
PYTHONPATH=/work/main $PY -m syne_prune.cli train-supernet --model sentence-transformers/all-MiniLM-L6-v2 --task rte --data-dir /work/shared/data/glue \
  --search-space medium --strategy full --epochs 1 --lr 1e-4 --batch-size 32 --max-length 128 --max-train-examples 960 --output $R/rte-supernet --overwrite
for version in before after; do
  if [ $version = before ]; then SRC=/work/wt/bench; else SRC=/work/main; fi
  (cd $SRC && PYTHONPATH=$SRC $PY benchmarks/pool_vs_local.py --supernet $R/rte-supernet --data-dir /work/shared/data/glue --trials 30 --workers 2 \
     --scheduler morea --max-eval-examples 64 --repeats 3 --parts search --out $R/pool_vs_local_$version.json)
done
(cd /work/main && PYTHONPATH=/work/main $PY benchmarks/suggestion_time.py --threads 2 --schedulers ehvi,morea,moasha --out $R/suggestion_time_after.json)
(cd /work/wt/bench && PYTHONPATH=/work/wt/bench $PY benchmarks/suggestion_time.py --threads 2 --schedulers ehvi,morea,moasha --out $R/suggestion_time_before.json)
echo done
