#!/usr/bin/env bash
# The one command of a GPU lease: unpack data, train NAME for BUDGET minutes, evaluate.
# Usage (device tool, carry [".devcarry"]): NAME=xs_gt BUDGET=7 [RESUME=--resume] [EXTRA="..."] bash tools/device/run.sh
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi -L
python3 tools/device/unpack_h36m.py || exit 1
python3 tools/device/train_run.py --name "$NAME" --budget-min "$BUDGET" $RESUME $EXTRA 2>&1 | tee "$OUT/$NAME.log"
timeout 150 python3 tools/device/eval_run.py "$OUT/${NAME}_final.pt" 2>&1 | tail -n 4
ls -la "$OUT"
