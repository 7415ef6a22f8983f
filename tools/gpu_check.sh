#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU (no network needed):
#   install plugrcnn from wheels carried along, run the CUDA tests, export mask+keypoint R50-FPN
#   (seeded calibrated random weights) at 800x1344 to ONNX / TensorRT / AOTInductor, and run
#   `plugrcnn bench` and `plugrcnn video` on every backend; all figures go into one JSON.
#
#   tools/gpu_check.sh [--dry-run] [--wheels DIR] [--out DIR] [--budget SECONDS] [--python PY]
#
# Steps run in priority order, each under `timeout`, and never past the budget (default 540 s, so
# the whole check ends within 10 minutes): a step that does not fit is recorded as skipped.
# --dry-run, or a machine without a GPU, prints the steps it would run and exits 0.
# Result: OUT/gpu_check.json (default output/gpu_check/), one log per step next to it.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DRY=0
WHEELS=${PLUGRCNN_WHEELS:-$ROOT/shared/wheels}
OUT=$ROOT/output/gpu_check
BUDGET=540
PY=${PYTHON:-python3}
CONFIG=configs/mask_keypoint_rcnn_R50_FPN.yaml
H=800
W=1344

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --wheels) WHEELS=$2; shift ;;
        --out) OUT=$2; shift ;;
        --budget) BUDGET=$2; shift ;;
        --python) PY=$2; shift ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

REASON=""
if [ "$DRY" = 1 ]; then
    REASON="--dry-run"
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "GPU"; then
    REASON="no NVIDIA GPU here (nvidia-smi finds none)"
fi

START=$(date +%s)
W_DIR=$OUT/work
STEPS_TSV=$OUT/steps.tsv
MODEL_ARGS="--config $CONFIG --weights $W_DIR/r50.pth --device cuda"
if [ -z "$REASON" ]; then
    mkdir -p "$W_DIR"
    : > "$STEPS_TSV"
fi

# step NAME TIMEOUT COMMAND...: run (or, in a dry run, print) one step and record its outcome
step() {
    local name=$1 limit=$2
    shift 2
    if [ -n "$REASON" ]; then
        printf '[%s] (at most %ss) %s\n' "$name" "$limit" "$*"
        return 0
    fi
    local left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$left" -lt 15 ]; then
        printf '%s\tskipped\t0\tbudget spent\n' "$name" >> "$STEPS_TSV"
        echo "gpu_check: $name skipped (budget spent)"
        return 0
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "gpu_check: $name (at most ${limit}s)"
    local began=$(date +%s)
    timeout --kill-after=10 "$limit" bash -c "$*" > "$OUT/$name.log" 2>&1
    local rc=$?
    local status=ok
    [ "$rc" = 0 ] || status="failed (exit $rc)"
    [ "$rc" = 124 ] && status="timed out after ${limit}s"
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - began ))" "$(tail -n 1 "$OUT/$name.log" | tr '\t' ' ')" >> "$STEPS_TSV"
    return 0
}

if [ -n "$REASON" ]; then
    echo "gpu_check: dry run ($REASON): the steps it would run, in order, within ${BUDGET}s:"
fi
cd "$ROOT" || exit 2

INSTALL="$PY -c 'import torch, torchvision' 2>/dev/null || $PY -m pip install --no-index --find-links $WHEELS torch torchvision;"
INSTALL+=" $PY -m pip install --no-index --find-links $WHEELS --no-build-isolation -e '.[deploy,test]'"
INSTALL+=" -e plugins/class -e plugins/box -e plugins/mask -e plugins/keypoint -e tests/plugins/area_head;"
INSTALL+=" $PY -m pip install --no-index --find-links $WHEELS onnxruntime-gpu tensorrt || echo 'optional GPU wheels missing'"
step install 180 "$INSTALL"
step weights 90 "$PY tools/calibrated_random_weights.py --config $CONFIG --output $W_DIR/r50.pth --height $H --width $W model.device=cuda"
step clip 30 "$PY -c \"import sys; sys.path.insert(0, 'tests/deploy'); sys.path.insert(0, 'tests/parity'); from deploy_fixtures import write_video; from pathlib import Path; write_video(Path('$W_DIR/clip.mp4'), 60, ($H, $W))\""
step bench_torch_fp16 90 "$PY -m plugrcnn.cli bench $MODEL_ARGS --backend torch --fp16 --height $H --width $W --iterations 30 --json $OUT/bench_torch_fp16.json"
step export_onnx 120 "$PY -m plugrcnn.cli export $MODEL_ARGS --format onnx --output $W_DIR/r50.onnx --height $H --width $W --triton $W_DIR/triton"
step bench_onnxruntime 90 "$PY -m plugrcnn.cli bench $MODEL_ARGS --backend onnxruntime --ort-provider cuda --model $W_DIR/r50.onnx --height $H --width $W --iterations 20 --json $OUT/bench_onnxruntime.json"
step export_tensorrt 240 "$PY -c 'import tensorrt' && $PY -m plugrcnn.cli export $MODEL_ARGS --format tensorrt --output $W_DIR/r50.engine --height $H --width $W --verify --engine-cache $W_DIR/engine-cache"
step bench_tensorrt 60 "test -f $W_DIR/r50.engine && $PY -m plugrcnn.cli bench $MODEL_ARGS --backend tensorrt --model $W_DIR/r50.engine --height $H --width $W --iterations 50 --json $OUT/bench_tensorrt.json"
step trtexec 60 "command -v trtexec && trtexec --loadEngine=$W_DIR/r50.engine --useCudaGraph --iterations=50"
step video_torch_fp16 90 "$PY -m plugrcnn.cli video $W_DIR/clip.mp4 $MODEL_ARGS --backend torch --fp16 --height $H --width $W --output $W_DIR/torch.mp4 --no-progress --json $OUT/video_torch_fp16.json"
step video_tensorrt 60 "test -f $W_DIR/r50.engine && $PY -m plugrcnn.cli video $W_DIR/clip.mp4 $MODEL_ARGS --backend tensorrt --model $W_DIR/r50.engine --output $W_DIR/trt.mp4 --no-progress --json $OUT/video_tensorrt.json"
step video_onnxruntime 90 "$PY -m plugrcnn.cli video $W_DIR/clip.mp4 $MODEL_ARGS --backend onnxruntime --ort-provider cuda --model $W_DIR/r50.onnx --output $W_DIR/ort.mp4 --no-progress --json $OUT/video_onnxruntime.json"
step cuda_tests 180 "$PY -m pytest -q -p no:cacheprovider tests/deploy/test_cuda.py tests/deploy/test_tensorrt.py tests/deploy/test_tensorrt_calls.py"
step export_aoti 240 "$PY -m plugrcnn.cli export $MODEL_ARGS --format aoti --fp16 --output $W_DIR/r50.pt2 --height $H --width $W"
step bench_aoti 60 "test -f $W_DIR/r50.pt2 && $PY -m plugrcnn.cli bench $MODEL_ARGS --backend aoti --model $W_DIR/r50.pt2 --height $H --width $W --iterations 30 --json $OUT/bench_aoti.json"
step video_aoti 60 "test -f $W_DIR/r50.pt2 && $PY -m plugrcnn.cli video $W_DIR/clip.mp4 $MODEL_ARGS --backend aoti --model $W_DIR/r50.pt2 --output $W_DIR/aoti.mp4 --no-progress --json $OUT/video_aoti.json"

if [ -n "$REASON" ]; then
    echo "[report] $PY tools/gpu_check_report.py $OUT -> $OUT/gpu_check.json"
    exit 0
fi
$PY tools/gpu_check_report.py "$OUT" --seconds $(( $(date +%s) - START ))
