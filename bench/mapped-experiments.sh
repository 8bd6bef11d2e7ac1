#!/usr/bin/env bash
# The multi-process and memory-limited measurements of docs/MAPPED.md, around `Samplers.Bench mapped ...`.
# Linux only (reads /proc, uses a cgroup-v1 memory controller). Build first:
#   dotnet build bench/Samplers.Bench -c Release
# Usage:
#   bench/mapped-experiments.sh pss DIR mapped|memory N [SECONDS]
#       N processes sample the cache in DIR for SECONDS (default 20) each, then their Pss (proportional set size,
#       /proc/PID/smaps_rollup) is summed while all of them still run.
#   bench/mapped-experiments.sh limited DIR LIMIT_MB READAHEAD SECONDS
#       evicts DIR's cache file from the page cache (posix_fadvise DONTNEED), then samples it mapped in a new
#       memory cgroup limited to LIMIT_MB (page cache is charged to the cgroup), with READAHEAD batches of read-ahead.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bench=(dotnet "$here/bench/Samplers.Bench/bin/Release/net10.0/Samplers.Bench.dll" mapped)

cmd="$1"; dir="$2"
case "$cmd" in
pss)
    backing="$3"; n="$4"; seconds="${5:-20}"
    pids=(); outs=()
    for i in $(seq 1 "$n"); do
        out="$(mktemp)"; outs+=("$out")
        "${bench[@]}" sample "$dir" "$backing" 0 "$seconds" 32 4 hold > "$out" 2>/dev/null &
        pids+=($!)
    done
    # Wait until every process has sampled for SECONDS (it prints "steady"), then read every Pss at once.
    for out in "${outs[@]}"; do until grep -q steady "$out"; do sleep 1; done; done
    total=0
    for p in "${pids[@]}"; do
        kb=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
        rss=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")
        echo "pid $p: Pss $((kb / 1024)) MiB, Rss $((rss / 1024)) MiB"
        total=$((total + kb))
    done
    echo "$backing x $n: summed Pss $((total / 1024)) MiB"
    for p in "${pids[@]}"; do kill "$p"; done
    wait || true
    rm -f "${outs[@]}"
    ;;
limited)
    limit="$3"; readahead="$4"; seconds="$5"
    file="$(ls "$dir"/*.parquet)"
    python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)" "$file"
    parent="/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)"
    cg="$parent/samplers-mapped-$$"
    mkdir "$cg"
    echo $((limit * 1024 * 1024)) > "$cg/memory.limit_in_bytes"
    sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$cg" "${bench[@]}" sample "$dir" mapped "$readahead" "$seconds" 32 4 || true
    echo "cgroup peak: $(( $(cat "$cg/memory.max_usage_in_bytes") / 1024 / 1024 )) MiB of $limit"
    rmdir "$cg"
    ;;
*)
    sed -n '2,13p' "$0"; exit 2 ;;
esac
