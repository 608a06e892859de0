#!/usr/bin/env bash
# A distributed Hyperband search on one machine: a chief (serves the oracle,
# runs no trials) and N workers sharing one search directory.
#
#   tuning/distributed-local.sh DATASET [WORKERS] [more tune flags...]
#   tuning/distributed-local.sh prepared/celeba 2 --max-epochs 9 --batch-size 256 --mixed-precision
#
# Environment: PORT (default 8000), PYTHON (default python), GPUS (e.g. "0,1":
# worker i sees GPU i mod the count; unset: every worker sees every device).
# On several machines run the chief on one and `--worker ID` with
# `--oracle-ip CHIEF_ADDRESS` on the others, over a shared --out folder.
# Stopping this script stops them all; running it again resumes the search.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 DATASET [WORKERS] [tune flags...]" >&2
    exit 2
fi
dataset=$1
workers=${2:-2}
shift $(( $# >= 2 ? 2 : 1 ))
port=${PORT:-8000}
python=${PYTHON:-python}
IFS=',' read -r -a gpus <<< "${GPUS:-}"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

tune=("$python" -m faces_keras tune "$dataset" --oracle-ip 127.0.0.1 --oracle-port "$port" "$@")
# The chief trains nothing: keep it off the GPUs.
CUDA_VISIBLE_DEVICES="" "${tune[@]}" --chief &
chief=$!
pids+=("$chief")
for i in $(seq 0 $((workers - 1))); do
    if [ ${#gpus[@]} -gt 0 ]; then
        CUDA_VISIBLE_DEVICES=${gpus[$((i % ${#gpus[@]}))]} "${tune[@]}" --worker "tuner$i" &
    else
        "${tune[@]}" --worker "tuner$i" &
    fi
    pids+=("$!")
done
# The chief summarises and retrains the best trial after the last worker is done.
wait "$chief"
wait
trap - EXIT
