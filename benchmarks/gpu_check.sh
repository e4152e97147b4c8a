#!/usr/bin/env bash
# The search on a machine with one NVIDIA GPU, in under 10 minutes: installs the project (torch 2.13.0,
# a CUDA build where the machine has a driver), then benchmarks/gpu_check.py: CPU-vs-GPU agreement of
# one network's first epochs, peak GPU memory, the paper preset on one beam with --device cuda for
# reduced generations in process and on 2 Ray workers sharing the GPU, nvidia-smi utilisation sampled
# in the background -> benchmarks/results/gpu_check.json.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine, from the repository root
#   bash benchmarks/gpu_check.sh --dry-run  # same steps on the CPU with tiny sizes (no install unless asked)
#   A4NN_GPU_CHECK_CPU=1 bash benchmarks/gpu_check.sh
# Extra arguments go to gpu_check.py (e.g. --epochs 5 --generations 2).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DRY=0
if [[ "${1:-}" == "--dry-run" ]]; then DRY=1; shift; fi
if [[ "${A4NN_GPU_CHECK_CPU:-0}" == "1" ]]; then DRY=1; fi
LOG=${A4NN_GPU_CHECK_LOG:-/tmp/a4nn-gpu-check-install.log}

if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
  echo "no nvidia-smi on this machine: CUDA cannot be used (the JSON will say so)" >&2
fi

# one clock for the whole check (install included): under 10 minutes in all
BUDGET=${A4NN_GPU_CHECK_BUDGET:-570}
START=$SECONDS
# pip must not hang on an unreachable index (offline machine): few retries, short timeouts, a cap per step
PIP_NET=(--retries 1 --timeout 20)
if [[ $DRY -eq 0 || "${A4NN_GPU_CHECK_INSTALL:-0}" == "1" ]]; then
  # torch stays 2.13.0; on a machine with a driver prefer its CUDA wheel when the one installed is CPU-only.
  # The local version is named (+cu128): a plain "torch==2.13.0" is already satisfied by 2.13.0+cpu and
  # pip would keep the CPU build. A4NN_TORCH_INDEX may point at a local mirror or a folder of wheels.
  have_cuda=$($PY -c 'import torch; print(int(torch.version.cuda is not None))' 2>/dev/null || echo 0)
  if [[ "$have_cuda" != "1" ]] && command -v nvidia-smi >/dev/null 2>&1; then
    CUDA_TAG=${A4NN_TORCH_CUDA:-cu128}
    timeout 240 $PY -m pip install -q "${PIP_NET[@]}" "torch==2.13.0+${CUDA_TAG}" \
      --index-url "${A4NN_TORCH_INDEX:-https://download.pytorch.org/whl/${CUDA_TAG}}" >>"$LOG" 2>&1 \
      || echo "could not install torch 2.13.0+${CUDA_TAG} (see $LOG): the GPU steps need a CUDA build of" \
              "torch 2.13.0; set A4NN_TORCH_INDEX to an index or wheel folder that has one" >&2
  fi
  # a machine without an index (offline) still gets the editable install over what it has
  timeout 180 $PY -m pip install -q "${PIP_NET[@]}" -e ".[test]" "torch==2.13.0" >>"$LOG" 2>&1 \
    || timeout 120 $PY -m pip install -q --no-deps --no-build-isolation -e . >>"$LOG" 2>&1 \
    || { echo "pip install -e . failed (see $LOG)" >&2; exit 1; }
fi

$PY -c 'import torch; print("torch", torch.__version__, "cuda build", torch.version.cuda, "cuda usable", torch.cuda.is_available())'

ARGS=()
if [[ $DRY -eq 1 ]]; then ARGS+=(--cpu --generations 1 --pop 2 --epochs 2 --agreement-epochs 2); fi
# the whole check stays under 10 minutes: gpu_check.py gets what the install left (--budget caps each
# step and writes the JSON after every step); timeout is the backstop
LEFT=$(( BUDGET - (SECONDS - START) ))
if (( LEFT < 120 )); then LEFT=120; fi
exec timeout -k 10 $(( LEFT + 20 )) $PY benchmarks/gpu_check.py --budget "$LEFT" "${ARGS[@]}" "$@"
