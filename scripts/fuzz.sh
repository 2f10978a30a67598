#!/bin/bash
# Fuzz every reader: build the libFuzzer harnesses of tests/fuzz (clang; ASan, UBSan and
# float-cast-overflow) into build-fuzz/ and run each one for SECONDS on its seeds plus the corpus
# it grew before (build-fuzz/corpus/<target>/). A crash stops with the input saved under
# build-fuzz/crashes/<target>/: copy it into tests/fuzz/corpus/<target>/ with the fix, and the
# normal test run replays it from then on (ctest fuzz_replay_<target>).
#   scripts/fuzz.sh [--seconds N] [--jobs J] [--seed S] [--seeds] [TARGET...]
#     --seconds N  per harness (default 600: the long campaign; scripts/test.sh runs 30)
#     --seed S     libFuzzer's random seed (default: a new one each run); scripts/test.sh fixes it,
#                  so the test run explores the same inputs on every machine
#     --jobs J     parallel fuzzing processes per harness (default 1)
#     --seeds      rewrite tests/fuzz/corpus/ with fuzz_make_seeds first (needs build/)
#     TARGET       gguf hf tokenizer dataset store (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=600 jobs=1 seeds=0 seed=0 targets=()
while (( $# )); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --seeds) seeds=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    gguf|hf|tokenizer|dataset|store) targets+=("$1"); shift ;;
    *) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
(( ${#targets[@]} )) || targets=(gguf hf tokenizer dataset store)
if (( seeds )); then
  cmake --build build --target fuzz_make_seeds >/dev/null
  build/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
fi
cmake -S . -B build-fuzz -DPL_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null
status=0
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t"
  log="build-fuzz/fuzz_$t.log"
  par=(); (( jobs > 1 )) && par=(-jobs="$jobs" -workers="$jobs")
  (( seed > 0 )) && par+=(-seed="$seed")
  # A store edit script is 5-13 bytes per edit: room for a dozen edits.
  [[ $t == store ]] && par+=(-max_len=160 -len_control=0)
  rc=0
  (cd build-fuzz && OPENBLAS_NUM_THREADS=1 PL_SOURCE_DIR="$PWD/.." "tests/fuzz/fuzz_$t" -max_total_time="$seconds" "${par[@]}" \
      -timeout=30 -rss_limit_mb=3072 -print_final_stats=1 -artifact_prefix="crashes/$t/" \
      "corpus/$t" "../tests/fuzz/corpus/$t") >"$log" 2>&1 || rc=$?
  # With -jobs, each job's output goes to fuzz-N.log in the working folder.
  cat build-fuzz/fuzz-*.log >>"$log" 2>/dev/null && rm -f build-fuzz/fuzz-*.log
  execs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  crashes=$(find "build-fuzz/crashes/$t" -type f | wc -l)
  echo "fuzz_$t: $execs executions in ${seconds} s x $jobs job(s), $crashes crash input(s) in build-fuzz/crashes/$t/ (log $log)"
  if (( rc != 0 || crashes > 0 )); then
    grep -m5 -E 'ERROR: |runtime error|SUMMARY' "$log" >&2 || true
    status=1
  fi
done
exit $status
