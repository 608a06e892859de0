#!/usr/bin/env bash
# The "beyond the five labels" tasks end to end on the real data in ../shared/data:
# prepare, train, report for FER-2013 (7 emotions), UTKFace (sex/race/age heads),
# CelebA (five labels, residual) and CelebA aligned, then a merged CelebA+UTKFace
# dataset (masked labels). docs/results.md records what these gave on a 2-core CPU.
#
#   benchmarks/run_tasks.sh [TASK ...]      TASK: fer2013 utkface utkface_classes celeba celeba_aligned merged
#
# Environment: PYTHON (default python), PREPARED (default prepared), RUNS (default
# runs), LOGS (default /tmp/faces-keras-tasks), EXTRA (extra train flags, e.g.
# "--max-train 2000 --epochs 3" for a quick pass). One task at a time: each
# training uses every core. Timings go to $LOGS/times.tsv (task, step, seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
PREPARED=${PREPARED:-prepared}
RUNS=${RUNS:-runs}
LOGS=${LOGS:-/tmp/faces-keras-tasks}
EXTRA=${EXTRA:-}
mkdir -p "$LOGS"
TASKS=("$@")
[ ${#TASKS[@]} -eq 0 ] && TASKS=(fer2013 utkface utkface_classes celeba celeba_aligned merged)

step() {  # step TASK NAME command...: run, log, and record the wall-clock seconds
    local task=$1 name=$2; shift 2
    local started=$SECONDS
    echo "== $task $name: $*" | tee -a "$LOGS/$task.log"
    "$@" >>"$LOGS/$task.log" 2>&1
    printf '%s\t%s\t%s\n' "$task" "$name" $((SECONDS - started)) | tee -a "$LOGS/times.tsv"
}

faces() { "$PYTHON" -m faces_keras "$@"; }

{ echo "# $(date -u +%FT%TZ) $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"; } >>"$LOGS/times.tsv"

for task in "${TASKS[@]}"; do
    case $task in
    fer2013|utkface|utkface_classes|celeba_aligned)
        data=${task%_classes}
        case $task in
        utkface) train_config=configs/utkface-heads-train.yaml ;;
        utkface_classes) train_config=configs/utkface-classes-train.yaml ;;
        celeba_aligned) train_config=configs/celeba_aligned-residual-train.yaml ;;
        *) train_config=configs/$task-train.yaml ;;
        esac
        [ -d "$PREPARED/$data" ] && [ "$task" = utkface_classes ] \
            || step "$task" prepare faces prepare "$PREPARED/$data" --config "configs/$data-prepare.yaml" --overwrite
        # shellcheck disable=SC2086
        step "$task" train faces train "$PREPARED/$data" --config "$train_config" --out "$RUNS/$task" --overwrite $EXTRA
        step "$task" report faces report "$RUNS/$task" --no-color
        ;;
    celeba)
        step celeba prepare faces prepare "$PREPARED/celeba" --config configs/celeba-prepare.yaml --overwrite
        # shellcheck disable=SC2086
        step celeba train faces train "$PREPARED/celeba" --config configs/celeba-residual-train.yaml \
            --out "$RUNS/celeba" --overwrite $EXTRA
        step celeba report faces report "$RUNS/celeba" --no-color
        ;;
    merged)
        # CelebA's five labels and UTKFace's four, one model: sex from both, the rest masked
        # where a part lacks them. Both parts at 64x64 grayscale so the images match.
        step merged prepare-utkface-gray faces prepare "$PREPARED/utkface-gray" --schema utkface \
            --labels ../shared/data/utkface/crop_part1 --size 64 --overwrite
        [ -d "$PREPARED/celeba" ] || step merged prepare-celeba faces prepare "$PREPARED/celeba" \
            --config configs/celeba-prepare.yaml
        step merged merge "$PYTHON" -c "
import sys
from faces_keras.data.combine import combine_datasets
print(combine_datasets(sys.argv[1:3], sys.argv[3], names=['celeba', 'utkface'], overwrite=True))
" "$PREPARED/celeba" "$PREPARED/utkface-gray" "$PREPARED/celeba+utkface"
        # shellcheck disable=SC2086
        step merged train faces train "$PREPARED/celeba+utkface" --config configs/celeba+utkface-train.yaml \
            --out "$RUNS/celeba+utkface" --overwrite $EXTRA
        step merged report faces report "$RUNS/celeba+utkface" --no-color
        ;;
    *) echo "unknown task $task (fer2013 utkface utkface_classes celeba celeba_aligned merged)" >&2; exit 2 ;;
    esac
done
echo "times: $LOGS/times.tsv; logs: $LOGS/<task>.log; runs: $RUNS/"
