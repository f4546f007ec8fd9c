#!/usr/bin/env bash
# Baseline numbers on a CUDA machine, before the CUDA-graph path: run from the repo root with
# the data subset in .data/ (see benchmarks/RESULTS.md). Writes JSON per run under $OUT.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GANFORGE_CACHE=/tmp/gfcache
nvidia-smi --query-gpu=name,memory.total,clocks.sm,driver_version --format=csv
python3 -c "import torch,sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name())"
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
GF="python3 -m ganforge"
CY="recipes/cyclegan_selfie2anime.toml --set data.root=.data/selfie2anime --peak-tflops 790 --json"
DC="recipes/dcgan_anime.toml --set data.root=.data/anime_faces_64 --peak-tflops 790 --json"
b() { name=$1; shift; echo "== $name"; timeout 240 $GF bench "$@" > "$OUT/$name.json" 2> "$OUT/$name.err"; echo "rc=$?";
      python3 - "$OUT/$name.json" <<'PY'
import json,sys
try: r=json.load(open(sys.argv[1]))
except Exception as e: print("  no result", e); sys.exit()
print(f"  {r['samples_per_s']:.1f} {r['sample_unit']}/s  median {r['step_time_median_s']*1e3:.1f} ms  p10-p90 {r['step_time_p10_s']*1e3:.1f}-{r['step_time_p90_s']*1e3:.1f}  wait {r['data_wait_share']*100:.1f}%  mem {(r['peak_memory_bytes'] or 0)/2**30:.2f} GiB  MFU {r.get('mfu',0)*100:.1f}%")
PY
  tail -3 "$OUT/$name.err"; }
b cy_b1_official_like $CY --batch-size 1 --steps 40 --warmup 10 --set train.precision=fp32 --set train.channels_last=false --set optim.g.fused=false --set optim.d.fused=false
b cy_b1_bf16 $CY --batch-size 1 --steps 40 --warmup 10
b cy_b16_bf16 $CY --batch-size 16 --steps 20 --warmup 5
b cy_b16_compile $CY --batch-size 16 --steps 20 --warmup 5 --set train.compile=true
b cy_b1_compile $CY --batch-size 1 --steps 40 --warmup 10 --set train.compile=true
b dc_b128_bf16 $DC --batch-size 128 --steps 50 --warmup 10
b dc_b128_compile $DC --batch-size 128 --steps 50 --warmup 10 --set train.compile=true
