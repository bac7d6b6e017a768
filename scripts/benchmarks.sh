#!/usr/bin/env bash
# Every benchmark and the evaluation, one after another (run on an otherwise idle machine;
# takes ~30 minutes on 2 cores). Results go to ${OUT:-bench-out}/.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench-out}
mkdir -p "$OUT"
export ADAIN_MODELS_DIR=${ADAIN_MODELS_DIR:-../shared/models}
A="node bin/adain.js"
$A bench > "$OUT/bench.txt" 2>&1
$A bench train --runs 7 > "$OUT/bench-train.txt" 2>&1
$A bench export --runs 5 > "$OUT/bench-export.txt" 2>&1
node --import tsx scripts/bench-web.ts --frames 20 --api-seconds 10 > "$OUT/bench-web.txt" 2>&1
node --import tsx scripts/loadtest.ts --duration 30 --connections 16 > "$OUT/loadtest.txt" 2>&1
$A eval --contents 20 --styles 20 --optimize-pairs 4 --out "$OUT/eval-out" > "$OUT/eval.txt" 2>&1
