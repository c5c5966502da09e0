#!/usr/bin/env bash
# The benchmark's GPU figures, on a machine without network, after the project's reference GPU check (its run.sh
# extracts ComfyUI to /tmp/w/ComfyUI, installs its missing wheels to /tmp/site and makes random full-size models in
# /tmp/w/models under the shipped workflows' names). From the checkout's root:
#   bash dev/benchmarks/gpu_e2e.sh            # about 3-4 minutes on an H200
# Env: W=/tmp/w SITE=/tmp/site OUT=/tmp/gpuout PY=python3 RUNS=3 SIZE=512 FRAMES=16 GRAPHS=(all) SMALL=1 (the 12 GiB
# check; 0 skips)
# COMPILE=0 (1 adds plain + t2v_lightning behind core's TorchCompileModel; several minutes of compiling).
# DYNVRAM=1: on a ComfyUI with dynamic VRAM (0.30: on by default on NVIDIA), plain + t2v_lightning in rounds with it
# and with --disable-dynamic-vram, so the sampler's cost on 0.30 is split between core's loading and the pack.
# Writes $OUT/e2e.txt, e2e_12gb.txt, motion_module.txt, e2e_dynvram_{on,off}.txt (+ .jsonl). Every step has a timeout; a failed step does not
# stop the next.
set -u
W=${W:-/tmp/w}; SITE=${SITE:-/tmp/site}; O=${OUT:-/tmp/gpuout}; PY=${PY:-python3}
RUNS=${RUNS:-3}; SIZE=${SIZE:-512}; FRAMES=${FRAMES:-16}
mkdir -p "$O"
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 ADL_TEST_CACHE=${ADL_TEST_CACHE:-$W/cache}
[ -f "$W/ComfyUI/main.py" ] || { echo "no $W/ComfyUI: run the GPU check's run.sh first"; exit 1; }
MODELS=(); [ -d "$W/models/checkpoints" ] && MODELS=(--models "$W/models")   # else dev/harness/ makes them (+1-2 min)
if [ -d "$W/models/checkpoints" ]; then   # the upscale models the upscale graphs name, if the GPU check made none
  mkdir -p "$W/models/upscale_models"
  "$PY" -c "import shutil, sys
from dev.harness.upscale_files import cached_upscale_file
for name in ('RealESRGAN_x4plus.safetensors', 'realesr-animevideov3.pth'):
    shutil.copy(cached_upscale_file(name), sys.argv[1])" "$W/models/upscale_models" || echo "no upscale models made"
fi
E2E=("$PY" -m dev.benchmarks.e2e --comfyui "$W/ComfyUI" "${MODELS[@]}" --comfy-arg=--disable-api-nodes)
t0=$(date +%s); stamp() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
stamp "e2e ${SIZE}px ${FRAMES} frames, $RUNS runs"
timeout 420 "${E2E[@]}" --size "$SIZE" --frames "$FRAMES" --runs "$RUNS" ${GRAPHS:+--graphs "$GRAPHS"} --json-out "$O/e2e.jsonl" \
  2>&1 | tee "$O/e2e.txt" | grep -vE "^  .* (warm-up|run) [0-9]+:" || true
if [ "${SMALL:-1}" != 0 ]; then
  stamp "12 GiB card: 32 frames + 2x upscale (RealESRGAN_x4plus and realesr-animevideov3)"
  timeout 300 "${E2E[@]}" --size "$SIZE" --frames 32 --runs 1 --graphs t2v_upscale,t2v_upscale@anime --vram-gb 12 \
    --json-out "$O/e2e_12gb.jsonl" 2>&1 | tee "$O/e2e_12gb.txt" | tail -25 || true
fi
stamp "motion module alone, ${SIZE}px (fp16 on CUDA), cfg 1 and 2"
{ timeout 120 "$PY" -m dev.benchmarks.motion_module --size "$SIZE" --profile
  timeout 60 "$PY" -m dev.benchmarks.motion_module --size "$SIZE" --conds 2; } 2>&1 | tee "$O/motion_module.txt" | head -30
if [ "${DYNVRAM:-1}" != 0 ] && grep -q -- "--disable-dynamic-vram" "$W/ComfyUI/comfy/cli_args.py"; then
  for mode in on off; do
    stamp "dynamic VRAM $mode: plain vs t2v_lightning in rounds"
    extra=(); [ "$mode" = off ] && extra=(--comfy-arg=--disable-dynamic-vram)
    timeout 240 "${E2E[@]}" "${extra[@]}" --size "$SIZE" --frames "$FRAMES" --runs "$RUNS" --interleave \
      --graphs plain,t2v_lightning --json-out "$O/e2e_dynvram_$mode.jsonl" 2>&1 | tee "$O/e2e_dynvram_$mode.txt" \
      | tail -8 || true
  done
fi
if [ "${COMPILE:-0}" != 0 ]; then
  stamp "TorchCompileModel (inductor)"
  timeout 600 "${E2E[@]}" --size "$SIZE" --frames "$FRAMES" --runs "$RUNS" --graphs plain,t2v_lightning --compile \
    --json-out "$O/e2e_compile.jsonl" 2>&1 | tee "$O/e2e_compile.txt" | tail -12 || true
fi
stamp done
