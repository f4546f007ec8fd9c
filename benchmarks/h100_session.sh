#!/usr/bin/env bash
# One device call: GPU tests, then training and translate benchmarks (pick them with BENCHES). Run from the repo root
# with the data subset in .data/ (see benchmarks/RESULTS.md). Results: $OUT/results.jsonl.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GANFORGE_CACHE=/tmp/gfcache
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2
nvidia-smi --query-gpu=name,clocks.sm --format=csv,noheader
if [ "${TESTS:-1}" = 1 ]; then
  timeout 400 python3 -m pytest -q -x tests/test_cuda_graph.py tests/test_translate_pipeline.py tests/test_bundled_plugins.py tests/plugins/test_networks.py tests/plugins/test_optim.py tests/test_cyclegan_training.py::test_cuda_amp_step 2>&1 | tail -25
fi
GF="python3 -m ganforge"
CY="recipes/cyclegan_selfie2anime.toml --set data.root=.data/selfie2anime --peak-tflops 790 --json"
DC="recipes/dcgan_anime.toml --set data.root=.data/anime_faces_64 --peak-tflops 790 --json"
b() { name=$1; t=$2; shift 2; echo "== $name"; timeout "$t" $GF bench "$@" > /tmp/r.json 2> /tmp/r.err; rc=$?
      python3 - "$name" "$rc" <<'PY' >> "$OUT/results.jsonl"
import json,sys
name, rc = sys.argv[1], sys.argv[2]
try: r=json.load(open("/tmp/r.json"))
except Exception: r={}
r["name"]=name; r["rc"]=int(rc)
print(json.dumps(r))
if "samples_per_s" in r:
    print(f"  {r['samples_per_s']:.1f} {r['sample_unit']}/s  median {r['step_time_median_s']*1e3:.2f} ms  p10-p90 {r['step_time_p10_s']*1e3:.2f}-{r['step_time_p90_s']*1e3:.2f}  wait {r['data_wait_share']*100:.1f}%  mem {(r['peak_memory_bytes'] or 0)/2**30:.2f} GiB  MFU {r.get('mfu',0)*100:.1f}%  graph={r.get('cuda_graph')} {r.get('cuda_graph_off') or ''}", file=sys.stderr)
if "baseline" in r:
    print(f"  official-like {r['baseline']['samples_per_s']:.1f}/s  speed-up {r['speedup']:.2f}x", file=sys.stderr)
PY
      [ "$rc" = 0 ] || grep -v Warning /tmp/r.err | tail -6; }
for spec in ${BENCHES:-cy_b1_graph cy_b16_graph_compile cy_b1_graph_compile translate dc_b128_graph cy_b4_graph cy_b16_graph dc_b128_compile}; do
  case $spec in
    # the rows without graphs or compile, for comparison
    cy_b1_official_like) b $spec 120 $CY --batch-size 1 --steps 40 --warmup 10 --set train.precision=fp32 \
        --set train.channels_last=false --set optim.g.fused=false --set optim.d.fused=false \
        --set train.compile=false --set train.cuda_graph=false ;;
    # ganforge against the official-like setup in one bench run (--baseline)
    cy_b1_vs_official) b $spec 300 $CY --batch-size 1 --steps 60 --warmup 10 --baseline ;;
    cy_b16_vs_official) b $spec 400 $CY --batch-size 16 --steps 20 --warmup 6 --baseline ;;
    cy_b1_eager) b $spec 120 $CY --batch-size 1 --steps 40 --warmup 10 --set train.compile=false --set train.cuda_graph=false ;;
    cy_b16_eager) b $spec 120 $CY --batch-size 16 --steps 20 --warmup 5 --set train.compile=false --set train.cuda_graph=false ;;
    dc_b128_eager) b $spec 120 $DC --batch-size 128 --steps 50 --warmup 10 --set train.cuda_graph=false ;;
    cy_b1_graph) b $spec 120 $CY --batch-size 1 --steps 60 --warmup 10 --set train.compile=false ;;
    cy_b4_graph) b $spec 120 $CY --batch-size 4 --steps 40 --warmup 10 --set train.compile=false ;;
    cy_b4_graph_compile) b $spec 200 $CY --batch-size 4 --steps 40 --warmup 10 --set train.compile=true ;;
    cy_b16_graph) b $spec 120 $CY --batch-size 16 --steps 20 --warmup 6 --set train.compile=false ;;
    cy_b1_graph_compile) b $spec 240 $CY --batch-size 1 --steps 60 --warmup 10 --set train.compile=true ;;
    cy_b16_graph_compile) b $spec 240 $CY --batch-size 16 --steps 20 --warmup 6 --set train.compile=true ;;
    # PyTorch's own instance norm under compile (converts channels_last), for A/B with the default
    cy_b16_native_norm) GANFORGE_INSTANCE_NORM=native b $spec 240 $CY --batch-size 16 --steps 20 --warmup 6 ;;
    cy_b1_native_norm) GANFORGE_INSTANCE_NORM=native b $spec 240 $CY --batch-size 1 --steps 60 --warmup 10 ;;
    cy_b16_autotune) b $spec 540 $CY --batch-size 16 --steps 20 --warmup 6 --set 'train.compile="max-autotune"' ;;
    cy_b16_nograph_compile) b $spec 240 $CY --batch-size 16 --steps 20 --warmup 6 --set train.compile=true --set train.cuda_graph=false ;;
    dc_b128_graph) b $spec 120 $DC --batch-size 128 --steps 100 --warmup 10 ;;
    dc_b128_compile) b $spec 200 $DC --batch-size 128 --steps 100 --warmup 10 --set train.compile=true ;;
    # the decoded cache: on disk (CPU workers crop and collate) and on the device (one gather kernel)
    dc_b128_disk_cache) b $spec 200 $DC --batch-size 128 --steps 200 --warmup 10 --set data.cache=true ;;
    dc_b128_device_cache) b $spec 200 $DC --batch-size 128 --steps 200 --warmup 10 --set 'data.cache="device"' ;;
    cy_b1_device_cache) b $spec 240 $CY --batch-size 1 --steps 60 --warmup 10 --set 'data.cache="device"' ;;
    # where a compiled batch-16 step spends its GPU time, by kernel family
    profile_b16|profile_b16_native_norm) echo "== $spec"; [ $spec = profile_b16 ] || export GANFORGE_INSTANCE_NORM=native
        timeout 300 python3 benchmarks/profile_step.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=.data/selfie2anime --batch-size 16 --json "$OUT/$spec.json" 2>&1 | grep -v Warning | tail -40
        unset GANFORGE_INSTANCE_NORM ;;
    translate) echo "== translate"; timeout 420 python3 benchmarks/translate_throughput.py recipes/cyclegan_selfie2anime.toml \
        --set data.root=.data/selfie2anime --batch-size 64 --compile --json /tmp/t.json > /tmp/t.out 2>&1; echo "rc=$?"; tail -12 /tmp/t.out
        [ -f /tmp/t.json ] && python3 -c "import json; print(json.dumps(json.load(open('/tmp/t.json'))))" >> "$OUT/results.jsonl" ;;
  esac
done
[ -f "$OUT/results.jsonl" ] && python3 benchmarks/summarize.py "$OUT/results.jsonl" > "$OUT/summary.md" && cat "$OUT/summary.md"
