#!/usr/bin/env bash
# Kill/fault campaign (docs/ROBUSTNESS.md): kill -9 during cache builds and downloads (against a loopback
# server), concurrent cache builders, damaged cache files. After every trial it asserts that nothing stale or
# half-written is visible: a cache file present is valid (`cache verify`), a load gives the reference digest, a
# finished download equals the source byte for byte and leaves no .part/.lock/.incomplete-download behind.
#   tools/fault-campaign.sh [TRIALS]      default 20 trials of each kind; CI runs 3
# Needs the .NET SDK and python3 (its http.server serves the bucket on 127.0.0.1). Writes only under a temp folder.
set -uo pipefail
cd "$(dirname "$0")/.."
trials=${1:-20}
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
dotnet build src/Samplers.Cli -c Release >/dev/null || { echo "campaign: build failed" >&2; exit 1; }
cli() { dotnet src/Samplers.Cli/bin/Release/net10.0/Samplers.Cli.dll "$@"; }
fail=0; pass=0
bad() { echo "campaign: FAIL $*" >&2; fail=$((fail + 1)); }
ok() { pass=$((pass + 1)); }
# a random delay in [0, $1) ms, as seconds for sleep
pause() { python3 -c "import random; print(random.uniform(0, $1) / 1000)"; }

data="$work/data"; mkdir -p "$data/synthetic_digits"; cp -r data/synthetic_digits/1.0.0 "$data/synthetic_digits/"
args=(synthetic_digits --data-dir "$data" --splits train,test)
ref=$(cli plan "${args[@]}" --no-cache --digest -c 4 -e 2 -s 20 2>/dev/null) || { echo "campaign: reference run failed" >&2; exit 1; }

# 1. kill -9 during cache builds
for i in $(seq "$trials"); do
  c="$work/cache1"; rm -rf "$c"
  cli cache "${args[@]}" build --cache-dir "$c" >/dev/null 2>&1 & pid=$!
  sleep "$(pause 2500)"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  if ls "$c"/*.parquet >/dev/null 2>&1; then
    cli cache "${args[@]}" verify --cache-dir "$c" >/dev/null 2>&1 || { bad "build kill $i: a cache file is present but invalid"; continue; }
  fi
  d=$(cli plan "${args[@]}" --cache-dir "$c" --digest -c 4 -e 2 -s 20 2>/dev/null)
  [ "$d" = "$ref" ] && ok || bad "build kill $i: digest $d after the kill, reference $ref"
done

echo "campaign: part 1 done at ${SECONDS} s" >&2
# 2. two builders at once
for i in $(seq "$trials"); do
  c="$work/cache2"; rm -rf "$c"
  cli cache "${args[@]}" build --cache-dir "$c" >/dev/null 2>&1 & a=$!
  cli cache "${args[@]}" build --cache-dir "$c" >/dev/null 2>&1 & b=$!
  wait "$a"; ra=$?; wait "$b"; rb=$?
  if [ $ra -ne 0 ] || [ $rb -ne 0 ]; then bad "concurrent $i: exit codes $ra $rb"; continue; fi
  cli cache "${args[@]}" verify --cache-dir "$c" >/dev/null 2>&1 && ok || bad "concurrent $i: the result does not verify"
done

echo "campaign: part 2 done at ${SECONDS} s" >&2
# 3. damaged cache files: truncated, a flipped byte, zero-filled, emptied
c="$work/cache3"; rm -rf "$c"; cli cache "${args[@]}" build --cache-dir "$c" >/dev/null 2>&1
good=$(ls "$c"/*.parquet); cp "$good" "$work/good.parquet"
for i in $(seq "$trials"); do
  cp "$work/good.parquet" "$good"
  size=$(stat -c %s "$good")
  case $((i % 4)) in
    0) truncate -s $((RANDOM * size / 32768)) "$good" ;;
    1) python3 -c "import random,sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); k=random.randrange(len(b)); b[k]^=1<<random.randrange(8); open(p,'wb').write(b)" "$good" ;;
    2) dd if=/dev/zero of="$good" bs=1 count=4096 seek=$((RANDOM * size / 32768)) conv=notrunc status=none ;;
    3) : > "$good" ;;
  esac
  # The default table (auto: mapped). The damage changed the file's ctime, so its verification stamp no longer
  # matches and the mapped open checks the payload checksum (docs/CACHE.md): a damaged file is a miss and is rebuilt.
  # If it were served instead, it would stay damaged and the verify below would fail.
  d=$(cli plan "${args[@]}" --cache-dir "$c" --digest -c 4 -e 2 -s 20 2>/dev/null)
  [ "$d" = "$ref" ] || { bad "damage $i: digest $d, reference $ref"; continue; }
  cli cache "${args[@]}" verify --cache-dir "$c" >/dev/null 2>&1 && ok || bad "damage $i: the rebuilt cache does not verify"
done

echo "campaign: part 3 done at ${SECONDS} s" >&2
# 4. kill -9 during downloads from a loopback bucket, then a complete run
bucket="$work/bucket/datasets/synthetic_digits"; mkdir -p "$bucket"; cp -r data/synthetic_digits/1.0.0 "$bucket/"
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1]); s.close()")
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$work/bucket" >/dev/null 2>&1 & server_pid=$!
sleep 1
for i in $(seq "$trials"); do
  d="$work/dl"; rm -rf "$d"
  cli download synthetic_digits:1.0.0 --data-dir "$d" --base-url "http://127.0.0.1:$port" --retries 1 >/dev/null 2>&1 & pid=$!
  sleep "$(pause 1500)"; kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  v="$d/synthetic_digits/1.0.0"
  if [ -d "$v" ] && ! diff -rq "$v" data/synthetic_digits/1.0.0 >/dev/null; then bad "download kill $i: a version folder differs from the source"; continue; fi
  cli download synthetic_digits:1.0.0 --data-dir "$d" --base-url "http://127.0.0.1:$port" >/dev/null 2>&1 || { bad "download kill $i: the next run failed"; continue; }
  diff -rq "$v" data/synthetic_digits/1.0.0 >/dev/null || { bad "download kill $i: the result differs from the source"; continue; }
  left=$(find "$d" -name '*.part' -o -name '*.lock' -o -name '*.incomplete-download*' -o -name '*.tmp' | head -1)
  [ -z "$left" ] && ok || bad "download kill $i: left $left"
done

kill "$server_pid" 2>/dev/null; server_pid=""

echo "campaign: part 4 done at ${SECONDS} s" >&2
# 5. a mapped cache changed in place under a reader: export of 3000 planned batches (40 rows each, through the mapped
# table's gather, which checks the file before each block of rows) while the file gets 4 KiB of random bytes written
# into it (dd conv=notrunc) or is truncated to half and grown back to its size. The run must either finish with the
# reference's bytes or fail with exit 2 naming the cache file; never exit 0 with other bytes, never crash (134, 135, 139):
# the table holds a kernel read lease, so the writer's open (dd, truncate) waits until the gathers reading the mapping
# are done and no truncation can land under a copy (SIGBUS; MAPPED.md, "Safety").
c="$work/cache5"; rm -rf "$c"; cli cache "${args[@]}" build --cache-dir "$c" >/dev/null 2>&1
good=$(ls "$c"/*.parquet); cp "$good" "$work/good5.parquet"
xargs5=(--cache-dir "$c" --table mapped -c 10 -e 4 --seed 3 -s 3000 --batches 0:3000 -q)
cli export "${args[@]}" "${xargs5[@]}" --out "$work/ref5.npz" >/dev/null 2>&1 || { echo "campaign: reference export failed" >&2; exit 1; }
same5=0; refused5=0; live5=0
for i in $(seq "$trials"); do
  cp "$work/good5.parquet" "$good"; rm -f "$work/out5.npz"
  size=$(stat -c %s "$good")
  cli export "${args[@]}" "${xargs5[@]}" --out "$work/out5.npz" >/dev/null 2>"$work/err5" & pid=$!
  # The change comes once the export's temporary output exists (the table is open and mapped, rows are being read and
  # written: about 0.1 s of a 1 s run on a quiet machine; before that, a change is a stamp mismatch at the open and a
  # rebuild), after a random 0-40 ms more; the summary says how many changes found the export still reading.
  for _ in $(seq 2000); do compgen -G "$work/.out5.npz.*" >/dev/null && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.005; done
  sleep "0.0$((RANDOM % 5))"
  compgen -G "$work/.out5.npz.*" >/dev/null && live5=$((live5 + 1))
  if [ $((i % 2)) -eq 0 ]; then
    dd if=/dev/urandom of="$good" bs=4096 count=1 seek=$((RANDOM % (size / 4096))) conv=notrunc status=none
  else
    # truncate(1) opens with O_NONBLOCK, so while the reader's lease is being given up its open fails with EAGAIN
    # instead of waiting: try again until it goes through (the kernel breaks a lease within lease-break-time).
    for _ in $(seq 600); do truncate -s $((size / 2)) "$good" 2>/dev/null && break; sleep 0.1; done
    truncate -s "$size" "$good"
  fi
  wait "$pid"; rc=$?
  if [ $rc -eq 0 ]; then
    cmp -s "$work/out5.npz" "$work/ref5.npz" && { ok; same5=$((same5 + 1)); } || bad "mapped change $i: exit 0 but the export differs from the reference"
  elif [ $rc -eq 2 ] && grep -qF "$good" "$work/err5"; then ok; refused5=$((refused5 + 1))
  else bad "mapped change $i: exit $rc ($(head -c 300 "$work/err5"))"
  fi
done

echo "campaign: part 5 done at ${SECONDS} s (mapped changes: $live5 of $trials made while the export wrote its output; $same5 finished with the reference bytes, $refused5 refused with exit 2)" >&2
# 6. FIFOs where the product reads files: each file of the dataset, the cache file and its .verified stamp replaced by a
# named pipe (mkfifo: opening it for reading would block until a writer comes). Metadata, labels and shards: exit 2
# naming the file within `timeout 60`, no cache file written. The cache file and the stamp: treated as absent (a miss,
# an unstamped file), so the run rebuilds or re-verifies, prints the reference digest and has replaced the FIFO by a
# regular file (a rename, never a write into the pipe).
c6="$work/cache6"; rm -rf "$c6"; cli cache "${args[@]}" build --cache-dir "$c6" >/dev/null 2>&1
cache6=$(ls "$c6"/*.parquet)
for i in $(seq "$trials"); do
  for f in dataset_info.json features.json label.labels.txt synthetic_digits-train.tfrecord-00001-of-00002; do
    d6="$work/data6"; rm -rf "$d6" "$work/cache6b"; mkdir -p "$d6/synthetic_digits"; cp -r data/synthetic_digits/1.0.0 "$d6/synthetic_digits/"
    p="$d6/synthetic_digits/1.0.0/$f"; rm "$p"; mkfifo "$p"
    timeout 60 dotnet src/Samplers.Cli/bin/Release/net10.0/Samplers.Cli.dll plan synthetic_digits --data-dir "$d6" --cache-dir "$work/cache6b" --digest -c 4 -e 2 -s 20 >/dev/null 2>"$work/err6"; rc=$?
    if [ $rc -ne 2 ] || ! grep -qF "$p" "$work/err6"; then bad "fifo $i $f: exit $rc ($(head -c 300 "$work/err6"))"; continue; fi
    ls "$work/cache6b"/*.parquet >/dev/null 2>&1 && { bad "fifo $i $f: a cache file was written"; continue; }
    ok
  done
  for which in cache stamp; do
    target=$cache6; [ "$which" = stamp ] && target="$cache6.verified"
    rm -f "$target"; mkfifo "$target"
    d=$(timeout 60 dotnet src/Samplers.Cli/bin/Release/net10.0/Samplers.Cli.dll plan "${args[@]}" --cache-dir "$c6" --digest -c 4 -e 2 -s 20 2>"$work/err6"); rc=$?
    if [ $rc -ne 0 ] || [ "$d" != "$ref" ]; then bad "fifo $i $which: exit $rc, digest $d ($(head -c 300 "$work/err6"))"; continue; fi
    [ -f "$target" ] && [ ! -p "$target" ] && ok || bad "fifo $i $which: the FIFO was not replaced by a regular file"
  done
done

echo "campaign: part 6 done at ${SECONDS} s" >&2
echo "fault campaign: $((trials * 11)) trials ($trials each: cache-build kills, concurrent builders, damaged caches, download kills, mapped changes; 6 FIFO placements x $trials): $pass passed, $fail failed"
[ "$fail" -eq 0 ]
