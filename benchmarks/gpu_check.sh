#!/usr/bin/env bash
# The GPU check (issue 17, item 6) as one prepared script for a lent device machine.
#
# The device machine has PyTorch and JAX but no TensorFlow and no network, so Keras runs there on jax
# and the wheels travel with the working tree (the device tool's `carry`, 64 MiB in all; /.whl/ is
# git-ignored for this).
#
#   here:   bash benchmarks/gpu_check.sh wheels          # fills .whl/ with faces-keras, keras, keras-tuner
#                                                         # and the small pure-Python dependencies
#   there:  device run, carry [".whl"], timeout 600:
#           bash benchmarks/gpu_check.sh run              # results under $OUT (gpu.md, logs)
#
# `run` checks first which of the suite's imports the machine lacks and says so (opencv, scipy,
# scikit-learn and pandas are too large to carry within the limit; if one is missing the check
# stops with its name). It then measures, each into $OUT/gpu.md: the devices jax sees; the
# quickstart on synthetic faces; training images/s of the default and the original all-label
# presets, with and without --mixed-precision; data-parallel training (--distribute) over every
# device jax sees, and its test (tests/test_distribute.py's one-step equality, if pytest is there);
# and a short Hyperband search.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
WHEELS=.whl

if [ "$mode" = wheels ]; then
  PY=${PY:-.venv/bin/python}
  mkdir -p "$WHEELS"
  pin() { grep -iE "^${1//-/[-_]}==" constraints.txt; }  # constraints spell some names with _
  "$PY" -m pip wheel -q --no-deps -w "$WHEELS" .
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$WHEELS" \
    "$(pin keras)" "$(pin keras-tuner)" "$(pin namex)" "$(pin optree)" "$(pin ml-dtypes)" "$(pin h5py)" \
    "$(pin filelock)" "$(pin tqdm)" "$(pin six)" "$(pin iterative-stratification)" "$(pin kt-legacy)" \
    "$(pin pyyaml)" "$(pin rich)" "$(pin markdown-it-py)" "$(pin mdurl)" "$(pin pygments)"
  du -sh "$WHEELS"
  exit 0
fi

if [ "$mode" != run ]; then
  echo "usage: bash benchmarks/gpu_check.sh wheels|run" >&2
  exit 2
fi

OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PY:-python3}
"$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-deps "$WHEELS"/*.whl 2>&1 | tail -3 || true
missing=$("$PY" - <<'EOF'
import importlib.util
need = ["jax", "numpy", "pandas", "cv2", "sklearn", "scipy", "matplotlib", "yaml", "filelock", "tqdm",
        "keras", "keras_tuner", "iterstrat", "PIL", "fairlearn"]
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "gpu_check: the device machine lacks: $missing (carry their wheels in $WHEELS, within 64 MiB)" | tee "$OUT/gpu.md"
  exit 3
fi

{
  echo "# GPU check ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  "$PY" -c "import jax, keras; print(f'- devices: {jax.devices()}'); print(f'- keras {keras.__version__}, jax {jax.__version__}')"
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/- GPU: /' || true
  echo
} > "$OUT/gpu.md"

work=$(mktemp -d)
fk() { "$PY" -m faces_keras "$@"; }
start=$(date +%s)
fk quickstart --faces 1200 --epochs 3 --out "$work/runs/quickstart" > "$OUT/quickstart.log" 2>&1
echo "- quickstart (1200 synthetic faces, 3 epochs): $(( $(date +%s) - start )) s" >> "$OUT/gpu.md"
dataset="$work/runs/quickstart-data/dataset"

echo >> "$OUT/gpu.md"
echo "| preset | mixed precision | training images/s (mean of epochs 2-3) |" >> "$OUT/gpu.md"
echo "|---|---|---:|" >> "$OUT/gpu.md"
for preset in default original-all-label; do
  for mp in "" --mixed-precision; do
    run="$work/runs/$preset${mp:+-mp}"
    fk train "$dataset" --preset "$preset" --epochs 3 --patience 3 $mp --out "$run" > "$run.log" 2>&1
    speed=$("$PY" -c "import pandas as pd; h = pd.read_csv('$run/history.csv'); print(round(h['images_per_second'].iloc[1:].mean()))")
    echo "| $preset | ${mp:+yes}${mp:-no} | $speed |" >> "$OUT/gpu.md"
    cp "$run.log" "$OUT/" 2>/dev/null || true
  done
done

# Data-parallel over the real devices (one device on a one-GPU machine: the path, not a speed-up).
run="$work/runs/default-distribute"
if fk train "$dataset" --epochs 3 --patience 3 --distribute --out "$run" > "$run.log" 2>&1; then
  speed=$("$PY" -c "import pandas as pd; h = pd.read_csv('$run/history.csv'); print(round(h['images_per_second'].iloc[1:].mean()))")
  echo "| default --distribute ($("$PY" -c 'import jax; print(len(jax.devices()))') device(s)) | no | $speed |" >> "$OUT/gpu.md"
else
  echo "| default --distribute | no | failed: see default-distribute.log |" >> "$OUT/gpu.md"
fi
cp "$run.log" "$OUT/" 2>/dev/null || true
if "$PY" -c "import pytest" 2>/dev/null; then
  "$PY" -m pytest -q tests/test_distribute.py > "$OUT/test_distribute.log" 2>&1 \
    && echo "- tests/test_distribute.py: passed" >> "$OUT/gpu.md" \
    || echo "- tests/test_distribute.py: FAILED (test_distribute.log)" >> "$OUT/gpu.md"
fi

start=$(date +%s)
fk tune "$dataset" --space default --max-epochs 3 --out "$work/searches" --retrain-epochs 0 > "$OUT/tune.log" 2>&1
echo >> "$OUT/gpu.md"
echo "- Hyperband, default space, max-epochs 3: $(( $(date +%s) - start )) s; summary below" >> "$OUT/gpu.md"
cat "$work"/searches/*/summary.md >> "$OUT/gpu.md" 2>/dev/null || true
cat "$OUT/gpu.md"
