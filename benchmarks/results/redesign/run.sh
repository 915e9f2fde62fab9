#!/usr/bin/env bash
# issue 15: pool-vs-local and suggestion time, before (ca0a746, checked out at $BEFORE) and after (this checkout, .) the redesign
set -x
export HF_HUB_OFFLINE=1
PY=.venv/bin/python
R=runs/redesign
cd .
PYTHONPATH=. $PY -m syne_prune.cli train-supernet --model sentence-transformers/all-MiniLM-L6-v2 --task rte --data-dir $GLUE_DIR \
  --search-space medium --strategy full --epochs 1 --lr 1e-4 --batch-size 32 --max-length 128 --max-train-examples 960 --output $R/rte-supernet --overwrite
for version in before after; do
  if [ $version = before ]; then SRC=$BEFORE; else SRC=.; fi
  (cd $SRC && PYTHONPATH=$SRC $PY benchmarks/pool_vs_local.py --supernet $R/rte-supernet --data-dir $GLUE_DIR --trials 30 --workers 2 \
     --scheduler morea --max-eval-examples 64 --repeats 3 --parts search --out $R/pool_vs_local_$version.json)
done
(cd . && PYTHONPATH=. $PY benchmarks/suggestion_time.py --threads 2 --schedulers ehvi,morea,moasha --out $R/suggestion_time_after.json)
(cd $BEFORE && PYTHONPATH=$BEFORE $PY benchmarks/suggestion_time.py --threads 2 --schedulers ehvi,morea,moasha --out $R/suggestion_time_before.json)
echo done
