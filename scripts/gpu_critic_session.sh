#!/usr/bin/env bash
# One lent GPU session of critic training, sized to fit a single device call (`timeout_s` about 540): train for a
# wall-clock budget, fit the expected-error head, score the violation pairs, and leave in $OUT what to bring back:
#
#   $OUT/critic.tar            the trained critic folder (save_pretrained + scoring options + head + card + log)
#   $OUT/toyworld_critic.json  its violation-pair accuracy and AUROC per kind (benchmarks/toyworld_critic.py)
#   $OUT/session.log           everything printed
#
# Every stage is bounded: training by --max-minutes (it stops at a step boundary and saves what it has), the head
# and the benchmark by their sizes. Settings come from the environment, with the defaults of a GPU session:
#
#   INIT=toyworld STEPS=20000 BATCH=64 WINDOW=8 LR=1e-3 TRAIN_MINUTES=6 WORKERS=12 POOL=1024 DEVICE=cuda SEED=0
#   EVAL_PAIRS=8 (the training's watch) CALIBRATION_STEPS=600 PAIRS=100 KINDS="" (all kinds)
#
# On the device, from the repository root (this path imports neither diffusers nor PyAV: the image's torch,
# transformers, accelerate and safetensors are enough; the script puts the repository on PYTHONPATH):
#   OUT=$OUT bash scripts/gpu_critic_session.sh
# On a CPU, a tiny dry run of the same script (what the tests run):
#   OUT=/tmp/out DEVICE=cpu STEPS=2 BATCH=2 POOL=8 WORKERS=0 EVAL_PAIRS=1 CALIBRATION_STEPS=2 PAIRS=1 \
#       KINDS="teleport drag" bash scripts/gpu_critic_session.sh
set -euo pipefail

: "${OUT:?set OUT to the folder whose files come back}"
INIT=${INIT:-toyworld}
STEPS=${STEPS:-20000}
BATCH=${BATCH:-64}
WINDOW=${WINDOW:-8}
LR=${LR:-1e-3}
TRAIN_MINUTES=${TRAIN_MINUTES:-6}
WORKERS=${WORKERS:-12}
POOL=${POOL:-1024}
DEVICE=${DEVICE:-cuda}
SEED=${SEED:-0}
EVAL_PAIRS=${EVAL_PAIRS:-8}
CALIBRATION_STEPS=${CALIBRATION_STEPS:-600}
PAIRS=${PAIRS:-100}
KINDS=${KINDS:-}
PYTHON=${PYTHON:-python3}

REPO=$(cd "$(dirname "$0")/.." && pwd)
RUN=$(mktemp -d)/critic
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$REPO"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
exec > >(tee "$OUT/session.log") 2>&1

echo "== $(date -u +%FT%TZ) on $DEVICE: $("$PYTHON" -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')"

# 1. train from $INIT for at most TRAIN_MINUTES (stops at a step boundary and saves the critic of the steps done)
started=$(date +%s)
"$PYTHON" -m hybridgen.cli train-critic "$RUN" --init "$INIT" --steps "$STEPS" --batch-size "$BATCH" \
    --window "$WINDOW" --lr "$LR" --seed "$SEED" --device "$DEVICE" --workers "$WORKERS" \
    --pool-size "$POOL" --max-minutes "$TRAIN_MINUTES" --eval-every 1000 --eval-pairs "$EVAL_PAIRS" --checkpoint-every 1000 --quiet
echo "== training: $(( $(date +%s) - started )) s"

# 2. the expected-error head the violation scoring divides by
started=$(date +%s)
"$PYTHON" -m hybridgen.cli calibrate-critic "$RUN" -o "$RUN" --steps "$CALIBRATION_STEPS" --device "$DEVICE" --quiet
echo "== head: $(( $(date +%s) - started )) s"

# 3. violation pairs: the trained critic and the pixel baseline (no untrained critic: its head fit doubles the time)
started=$(date +%s)
# shellcheck disable=SC2086  # KINDS is a list of words
"$PYTHON" "$REPO/benchmarks/toyworld_critic.py" --critic "$RUN" --pairs "$PAIRS" --device "$DEVICE" \
    --skip-untrained ${KINDS:+--kinds $KINDS} --json "$OUT/toyworld_critic.json"
echo "== benchmark: $(( $(date +%s) - started )) s"

# 4. what comes back: the critic folder as one file (the device returns at most 8 files)
rm -rf "$RUN/checkpoint"  # the next session starts from the critic itself (INIT=critic folder), not the optimizer
tar -cf "$OUT/critic.tar" -C "$(dirname "$RUN")" critic
echo "== done: $(du -h "$OUT/critic.tar" | cut -f1) in critic.tar"
