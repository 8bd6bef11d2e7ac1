#!/usr/bin/env bash
# Fuzz the parsers with AFL++ and SharpFuzz (docs/ROBUSTNESS.md). Needs afl++ (Debian: apt-get install afl++) and
# the SharpFuzz.CommandLine dotnet tool (installed into a temporary tool path when `sharpfuzz` is not on PATH).
#   tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]        default 300 s, every target
#   UPDATE_CORPUS=1 tools/fuzz.sh ...                      afterwards, minimise the queue (afl-cmin) into tools/Samplers.Fuzz/corpus/<target>
#                                                          as 0000, 0001, ...; named files (seeds, finding-*) are kept
# Prints one line per target: executions, execs/s, corpus size, edges, crashes, hangs. Findings stay in $WORK/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tfrecord example features-json dataset-info-json image parquet-page npy-header labels-file verify-stamp)
command -v afl-fuzz >/dev/null || { echo "fuzz: afl-fuzz not found (apt-get install afl++)" >&2; exit 1; }
WORK=${WORK:-$(mktemp -d)}
sharpfuzz=$(command -v sharpfuzz || true)
if [ -z "$sharpfuzz" ]; then
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$WORK/tools" >/dev/null
  sharpfuzz="$WORK/tools/sharpfuzz"
fi
dotnet build tools/Samplers.Fuzz -c Release >/dev/null
cp -r tools/Samplers.Fuzz/bin/Release/net10.0 "$WORK/bin"
"$sharpfuzz" "$WORK/bin/Samplers.dll"   # instruments the library in place (only the copy)
export AFL_ALLOW_TMP=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
for t in "${targets[@]}"; do
  out="$WORK/$t"
  afl-fuzz -V "$secs" -i "tools/Samplers.Fuzz/corpus/$t" -o "$out" -t 5000 -m none -- dotnet "$WORK/bin/Samplers.Fuzz.dll" "$t" >"$out.log" 2>&1 || true
  s="$out/default/fuzzer_stats"
  if [ ! -f "$s" ]; then echo "$t: afl-fuzz did not start (see $out.log)"; continue; fi
  g() { grep -E "^$1 " "$s" | sed 's/.*: //'; }
  echo "$t: ${secs}s, execs $(g execs_done), $(g execs_per_sec)/s, corpus $(g corpus_count) (from $(ls "tools/Samplers.Fuzz/corpus/$t" | wc -l) seeds), edges $(g edges_found), crashes $(g saved_crashes), hangs $(g saved_hangs)"
  if [ "${UPDATE_CORPUS:-0}" = 1 ]; then
    min="$WORK/$t.min"
    afl-cmin -i "$out/default/queue" -o "$min" -t 5000 -m none -- "$(command -v dotnet)" "$WORK/bin/Samplers.Fuzz.dll" "$t" >"$out.cmin.log" 2>&1 || true
    if [ -d "$min" ] && [ -n "$(ls "$min")" ]; then
      # Replace the generated inputs; keep the named ones (seeds and past findings, e.g. finding-*).
      find "tools/Samplers.Fuzz/corpus/$t" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]' -delete
      i=0; for f in "$min"/*; do cp "$f" "tools/Samplers.Fuzz/corpus/$t/$(printf '%04d' $i)"; i=$((i+1)); done
    fi
  fi
done
echo "fuzz: work folder $WORK (queues, crashes, hangs, logs)"
