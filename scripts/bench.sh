#!/usr/bin/env bash
# `make bench`: prints the verification, memory, pre-signing and CLI upload figures, each beside its
# baseline measured in the same run (`scripts/bench.sh PORT cli`: the CLI upload alone, item 5;
# `scripts/bench.sh PORT page`: the page's 1 GiB upload in Chromium, hashing on vs off, item 6, with
# item 4's in-browser hashing figures (the same run of browser/bench.mjs); items 5 and 6 use ports
# PORT to PORT+2: the S3 server, moto, the api; item 6's run with the uplink capped, PORT+4 and
# PORT+5: a second S3 server (--link-cap) and a second api;
# `scripts/bench.sh PORT verify`: the hashing core, verification and verifier memory, items 0-2;
# `scripts/bench.sh PORT receipt`: the CLI's offline receipt check, item 7;
# `scripts/bench.sh PORT load`: the load test alone, item 8, on ports PORT to PORT+2;
# `scripts/bench.sh PORT segments`: time to verdict by segments, item 9, on PORT and PORT+3).
# Figures and machine go in docs/benchmarks.md.
#
# The S3 server here is s3s + s3s-fs (examples/s3_server.rs: real S3 protocol, SigV4 checked,
# file-backed; GET bodies read in 1 MiB blocks, not s3s-fs's 4 KiB ones), not moto: moto copies
# the whole object on every request, so 128 ranged GETs of a 1 GiB object cost 128 full copies
# (measured: 13 MiB/s), which measures moto, not the verifier.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-4588}
. scripts/env.sh
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
command -v openssl >/dev/null || { apt-get update -qq && apt-get install -y -qq openssl; }
scripts/stack.sh setup
local_aws_env "$port"
cargo build --locked --release --workspace --bins --examples 2>&1 | tail -1
py=.venv/bin/python
rel=${CARGO_TARGET_DIR:-target}/release
work=.local/bench
mkdir -p "$work"

load_bench() { # section 8; alone: scripts/bench.sh PORT load (moto on PORT, api PORT+1, dynalite PORT+2)
echo "== 8. load: 50 owners + 1 heavy owner create, PUT one small part, complete; 32 in flight"
# The local stack as `make dev` runs it (moto: S3, SQS, EventBridge; scripts/stack.sh), except that
# DynamoDB is dynalite (scripts/dynalite.sh: it serializes each item's writes as DynamoDB does, and
# reports ConsumedCapacity), and the real `api` binary, which also consumes the verifier queue.
# LOCAL_CALLER_HEADER lets each request name its owner; DYNAMODB_CONSUMED_CAPACITY=1 logs each
# DynamoDB call's capacity, read back from the JSON log by the generator (bench_load).
local lport=$1 lapi=$(($1 + 1)) lddb=$(($1 + 2)) lapi_pid
local_aws_env "$lport"
scripts/stack.sh start "$lport" >"$work/load-stack.log" 2>&1
scripts/dynalite.sh start "$lddb" >>"$work/load-stack.log" 2>&1
trap 'kill $lapi_pid 2>/dev/null; scripts/dynalite.sh stop '"$lddb"'; scripts/stack.sh stop '"$lport" EXIT
AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$lddb" LOCAL_CALLER_HEADER=x-local-caller \
  DYNAMODB_CONSUMED_CAPACITY=1 AWS_LAMBDA_LOG_FORMAT=JSON RUST_LOG=info \
  LISTEN_ADDR="127.0.0.1:$lapi" WEB_DIR=/nonexistent $rel/api >"$work/load-api.log" 2>&1 &
lapi_pid=$!
for _ in $(seq 1 50); do curl -sf "127.0.0.1:$lapi/healthz" >/dev/null && break; sleep 0.2; done
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
local moto_from
moto_from=$(stat -c %s ".local/moto-$lport.log")
$rel/examples/bench_load --api "http://127.0.0.1:$lapi" --dynamodb "http://127.0.0.1:$lddb" \
  --s3 "http://127.0.0.1:$lport" --bucket "$BUCKET_NAME" --table "$TABLE_NAME" \
  --api-log "$work/load-api.log" --seconds "${BENCH_LOAD_SECONDS:-30}" \
  --concurrency "${BENCH_LOAD_CONCURRENCY:-32}" --owners 50 --size 4096
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
# The S3 requests behind those uploads, by type, from moto's request log (the client's PUTs too).
python3 scripts/moto_requests.py ".local/moto-$lport.log" "$moto_from" "$BUCKET_NAME"
# What the emulators and the API cost in CPU over the whole section (utime+stime, /proc/PID/stat).
for p in "api:$lapi_pid" "moto:$(cat .local/moto-"$lport".pid)" "dynalite:$(cat .local/dynalite-"$lddb".pid)"; do
  awk -v n="${p%%:*}" '{printf "%s CPU: %.1f s  ", n, ($14 + $15) / 100}' "/proc/${p#*:}/stat"
done
echo
kill $lapi_pid 2>/dev/null
scripts/dynalite.sh stop "$lddb"; scripts/stack.sh stop "$lport"
trap - EXIT
}

if [ "${2:-}" = load ]; then
  echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  scripts/dynalite.sh setup
  load_bench "$port"
  exit 0
fi
rm -rf "$work/s3" && mkdir -p "$work/s3/$BUCKET_NAME"
$rel/examples/s3_server "$work/s3" "$port" >"$work/server.log" 2>&1 &
server=$!
# The objects uploaded here (GiBs) go with the server.
trap 'kill $server $api $link_server $link_api 2>/dev/null || true; scripts/stack.sh stop $ddb_port; rm -rf "$work/s3"' EXIT
api= link_server= link_api=
ddb_port=$((port + 1))
api_port=$((port + 2))
# Each run removes what the previous one stored (the same cheap rm in both), so the runs do not
# pile up GiBs on the disk.
clean="rm -rf $work/s3/$BUCKET_NAME/uploads $work/s3/$BUCKET_NAME/bench/cp-1g.bin"
sleep 1
secs() { python3 -c "import sys; print(f'{float(sys.argv[1]):.3f}')" "$1"; }
mib() { python3 -c "import sys; print(f'{1024/float(sys.argv[1]):.0f}')" "$1"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
best_of() { # best wall seconds of N runs of a shell command (which must succeed)
  python3 -c '
import subprocess, sys, time
best = float("inf")
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", sys.argv[2]], check=True, stdout=subprocess.DEVNULL)
    best = min(best, time.perf_counter() - started)
print(best)' "$1" "$2"
}

# The `api` of items 5 and 6 (started once, for both): its S3 is the s3s server above (the
# shared AWS_ENDPOINT_URL); every other service it calls is moto on the next port, each through the
# SDK's per-service variable: DynamoDB; KMS, since the receipt is signed with the verdict and no
# verdict is written without it (RECEIPT_KEY_ID, env.sh: the alias bootstrap.py creates there);
# SQS, the verifier queue it consumes and hands large objects over to; EventBridge, where every
# verdict is announced (EVENT_BUS_NAME). The queue URLs name moto's queues, which stack.sh creates
# (S3 there is unused). The api of item 6's capped run (launch_api) differs only in its S3.
moto=http://127.0.0.1:$ddb_port
on_moto=(AWS_ENDPOINT_URL_DYNAMODB="$moto" AWS_ENDPOINT_URL_KMS="$moto"
  AWS_ENDPOINT_URL_SQS="$moto" AWS_ENDPOINT_URL_EVENTBRIDGE="$moto"
  VERIFIER_QUEUE_URL="$moto/123456789012/$BUCKET_NAME-verifier"
  WEBHOOK_QUEUE_URL="$moto/123456789012/$BUCKET_NAME-webhooks")
start_api() {
  [ -z "$api" ] || return 0
  env "${on_moto[@]}" scripts/stack.sh start "$ddb_port" >"$work/stack.log" 2>&1 \
    || { cat "$work/stack.log" >&2; exit 1; }
  launch_api "$api_port" "$AWS_ENDPOINT_URL" "$work/api.log"
  api=$launched
}
launch_api() { # PORT S3_URL LOG: a release api on PORT whose S3 is S3_URL (the rest moto); its pid in $launched
  env "${on_moto[@]}" AWS_ENDPOINT_URL_S3="$2" LISTEN_ADDR="127.0.0.1:$1" WEB_DIR=web RUST_LOG=info \
    $rel/api >"$3" 2>&1 &
  launched=$!
  for _ in $(seq 1 50); do curl -sf "127.0.0.1:$1/healthz" >/dev/null && break; sleep 0.2; done
  # Receipts on means the key set is read from KMS: without it no upload would ever verify.
  if [ -n "${RECEIPT_KEY_ID:-}" ] && ! curl -sf "127.0.0.1:$1/.well-known/jwks.json" \
      | python3 -c 'import json,sys; sys.exit(not json.load(sys.stdin)["keys"])'; then
    echo "the api has no receipt key (KMS on $moto?):" >&2; tail -20 "$3" >&2; exit 1
  fi
}

cli_upload_bench() { # section 5; alone: scripts/bench.sh PORT cli
echo "== 5. upload of 1 GiB: the verified-uploads CLI vs aws s3 cp (same server, part size, concurrency)"
# The API's S3 is the s3s server above; DynamoDB, KMS, SQS and EventBridge are moto (start_api).
# The CLI's time includes hashing the file whole and per part, and the service reading the object
# back and verifying it; `aws s3 cp` (awscli from PyPI, .venv) signs each part's SHA-256 in its
# SigV4 payload hash over http, and verifies nothing after.
part=${BENCH_PART_MIB:-16}
conc=${BENCH_CONCURRENCY:-4}
start_api
export XDG_CACHE_HOME=$PWD/$work/cache
cli="$rel/verified-uploads upload -q --api http://127.0.0.1:$api_port --part-size ${part}MiB --concurrency $conc $work/1g.bin"
printf '[default]\ns3 =\n  multipart_chunksize = %sMB\n  max_concurrent_requests = %s\n' "$part" "$conc" >"$work/aws-config"
awscp="AWS_CONFIG_FILE=$work/aws-config .venv/bin/aws s3 cp --only-show-errors $work/1g.bin s3://$BUCKET_NAME/bench/cp-1g.bin"
$cli | grep -q "^verified .* $expected "   # the upload really verifies, with the right digest
# Interleaved (CLI, aws, CLI, aws, …), so load from anything else on the machine hits both alike.
read -r u a < <(python3 -c '
import subprocess, sys, time
best = [float("inf")] * 2
for _ in range(3):
    for i, cmd in enumerate(sys.argv[1:3]):
        started = time.perf_counter()
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
        best[i] = min(best[i], time.perf_counter() - started)
print(*best)' "$clean; $cli" "$clean; $awscp")
echo "verified-uploads upload: $(secs "$u") s ($(mib "$u") MiB/s)   aws s3 cp: $(secs "$a") s ($(mib "$a") MiB/s)   CLI/aws throughput: $(ratio "$a" "$u")x (target >= 1.0)"
# The part of the CLI's time spent by the service reading the object back (its log, last run).
# (The CLI sends part_states: the service logs "verified digest by segments … segments=N".)
v=$(grep -oE 'verified digest( by segments)? size=1073741824( segments=[0-9]+)? seconds=[0-9.]+' "$work/api.log" | tail -1 | sed 's/.*seconds=//')
echo "of which the service's read-back verification: $(secs "$v") s; parts sent and completed in the rest"
eval "$clean"
r=$(/usr/bin/time -v $cli 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}')
eval "$clean"
echo "peak RSS of the CLI upload: $((r / 1024)) MiB (bound: ($conc + 2) x $part MiB = $(((conc + 2) * part)) MiB of parts, plus the runtime)"
}

page_upload_bench() { # section 6; alone: scripts/bench.sh PORT page
echo "== 6. the page's upload of 1 GiB in Chromium, hashing on vs off (same API and S3 server as 5)"
# (Section 4's hashing figures are printed again: the same run of browser/bench.mjs.) The api
# serves the page (WEB_DIR=web); `/` hashes in its worker, `/?hashing=off` sends the same parts
# unhashed: no part checksums, digest or part_states (web/app.js).
start_api
echo "-- uncapped (2 shared cores: server and browser compete)"
page_run "$api_port" "$server" "$api"
# Then the same comparison with the client's uplink emulated: a second S3 server over the same
# files receives at most $cap MB/s over all its connections together (--link-cap), as a browser
# uploading parts on several connections at once shares its uplink; a second api (same moto) uses
# it. The first api stops meanwhile: both consume the same verifier queue.
local cap=${BENCH_LINK_CAP:-100} lport=$((port + 4)) laport=$((port + 5))
kill $api 2>/dev/null || true; wait $api 2>/dev/null || true; api=
$rel/examples/s3_server "$work/s3" "$lport" --link-cap "$cap" >"$work/link-capped.log" 2>&1 &
link_server=$!
sleep 1
launch_api "$laport" "http://127.0.0.1:$lport" "$work/api-link-capped.log"
link_api=$launched
echo "-- uplink capped at $cap MB/s ($(python3 -c "print(f'{$cap * 8 / 1000:g}')") Gbit/s, shared by all connections)"
BENCH_UPLOAD_ONLY=1 page_run "$laport" "$link_server" "$link_api"
kill $link_server $link_api 2>/dev/null || true
wait $link_server $link_api 2>/dev/null || true
link_server= link_api=
}
page_run() { # API_PORT S3_SERVER_PID API_PID: browser/bench.mjs's upload through that api
  eval "$clean"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  BENCH_API_URL="http://127.0.0.1:$1" BENCH_PIDS="s3-server=$2 api=$3 moto=$(cat ".local/moto-$ddb_port.pid")" \
    node browser/bench.mjs
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  eval "$clean"
}

receipt_check_bench() { # section 7; alone: scripts/bench.sh PORT receipt
echo "== 7. a receipt checked offline by the CLI (verified-uploads check, process start included, best of 5)"
# A receipt and its key set as the service issues them, signed with jwcrypto (scripts/receipt_fixture.py).
$py scripts/receipt_fixture.py "$work/1g.bin" "$work/1g.receipt.jwt" "$work/keys.json"
local sig file
sig=$(best_of 5 "$rel/verified-uploads check $work/1g.receipt.jwt --keys $work/keys.json")
file=$(best_of 3 "$rel/verified-uploads check $work/1g.receipt.jwt $work/1g.bin --keys $work/keys.json")
echo "signature against saved keys: $(python3 -c "import sys; print(f'{float(sys.argv[1])*1000:.1f}')" "$sig") ms (target < 100 ms)   with the 1 GiB file hashed: $(secs "$file") s"
}

segments_bench() { # section 9; alone: scripts/bench.sh PORT segments
local cap=${BENCH_GET_CAP:-75} cport=$((port + 3)) part=$((64 * 1048576)) cserver f w line
echo "== 9. time to verdict by segments: W segment workers vs the sequential verifier, every connection capped at $cap MB/s"
# A second server on the same files, each connection's sending capped at $cap MB/s: one Lambda
# function's network. The sequential verifier runs on one connection (VERIFY_CONCURRENCY=1: one
# function); the segment workers (verifier --workers W) each read their segment on their own
# connection, as W functions each taking one segment message would. The states are the ones
# the CLI declares for 64 MiB parts (16 segments for 1 GiB, 64 for 4 GiB: the service keeps 64).
$rel/examples/s3_server "$work/s3" "$cport" --get-cap "$cap" >"$work/capped.log" 2>&1 &
cserver=$!
sleep 1
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in 1g 4g; do
  $rel/verifier --print-part-states "$work/$f.bin" --part-size $part >"$work/$f.states.json"
  local want sw sc ww wc
  want=$(sha256sum "$work/$f.bin" | cut -d' ' -f1)
  # One run's "wall user+sys" (/usr/bin/time; the digest checked by --expect-sha256).
  timed() {
    AWS_ENDPOINT_URL="http://127.0.0.1:$cport" /usr/bin/time -f 'TIME %e %U %S' "$@" \
      --bucket "$BUCKET_NAME" --key "bench/$f.bin" --expect-sha256 "$want" 2>&1 >/dev/null |
      awk '/^TIME/ {printf "%s %.2f\n", $2, $3 + $4}'
  }
  read -r sw sc <<<"$(timed env VERIFY_CONCURRENCY=1 $rel/verifier)" || true
  line="$f sequential: $(secs "$sw") s, $(secs "$sc") CPU-s"
  for w in 16 4 1; do
    read -r ww wc <<<"$(timed $rel/verifier --part-size $part --part-states "$work/$f.states.json" --workers $w)" || true
    line="$line | W=$w: $(secs "$ww") s ($(ratio "$sw" "$ww")x faster), CPU $(ratio "$wc" "$sc")x"
  done
  echo "$line"
done
echo "(targets: W=16 on 4g >= 8x faster than sequential; CPU <= 1.1x sequential)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
kill $cserver 2>/dev/null || true
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), sha_ni: $(grep -q sha_ni /proc/cpuinfo && echo yes || echo no)"
echo "== fixtures"
[ -s "$work/1g.bin" ] || head -c 1073741824 /dev/urandom >"$work/1g.bin"
if [ "${2:-}" = cli ]; then expected=$(sha256sum "$work/1g.bin" | cut -d' ' -f1); cli_upload_bench; exit 0; fi
if [ "${2:-}" = receipt ]; then receipt_check_bench; exit 0; fi
if [ "${2:-}" = page ]; then scripts/browser.sh chromium; page_upload_bench; exit 0; fi
[ -s "$work/4g.bin" ] || cat "$work/1g.bin" "$work/1g.bin" "$work/1g.bin" "$work/1g.bin" >"$work/4g.bin"
for f in 1g 4g; do $py scripts/bench_helpers.py upload "$work/$f.bin" "bench/$f.bin"; done
expected=$(sha256sum "$work/1g.bin" | cut -d' ' -f1)
if [ "${2:-}" = segments ]; then segments_bench; exit 0; fi

echo "== 0. hashing core: SHA-256 of a 1 GiB file in the page cache (best of 3)"
ours=$($rel/examples/bench_hash "$work/1g.bin" 3 | python3 -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
ossl=$(best_of 3 "openssl dgst -sha256 $work/1g.bin")
echo "verified-uploads sha2: $(secs "$ours") s   openssl dgst -sha256: $(secs "$ossl") s   ours/openssl speed: $(ratio "$ossl" "$ours")x (target >= 0.95)"

echo "== 1. verification throughput, 1 GiB object from the local S3 server (best of 3)"
v=$(best_of 3 "$rel/verifier --bucket $BUCKET_NAME --key bench/1g.bin --expect-sha256 $expected")
url=$($py scripts/bench_helpers.py presign-get bench/1g.bin)
c=$(best_of 3 "curl -sf '$url' | openssl dgst -sha256 | grep -q $expected")
b=$($py scripts/bench_helpers.py boto3-hash bench/1g.bin | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['sha256']=='$expected'; print(d['seconds'])")
echo "verifier: $(secs "$v") s ($(mib "$v") MiB/s)   curl|openssl: $(secs "$c") s ($(mib "$c") MiB/s)   boto3+hashlib: $(secs "$b") s ($(mib "$b") MiB/s)"
echo "verifier vs curl|openssl: $(ratio "$c" "$v")x (target >= 1.0)   vs boto3+hashlib: $(ratio "$b" "$v")x (target >= 8)"
# The server's own ceiling: the same 1 GiB fetched as 4 parallel ranged curls, nothing hashed.
q=$((1073741824 / 4))
ceiling=$(best_of 3 "for i in 0 1 2 3; do curl -sf -r \$((i*$q))-\$((i*$q+$q-1)) '$url' -o /dev/null & done; wait")
echo "server ceiling (4 ranged curls, no hashing): $(secs "$ceiling") s ($(mib "$ceiling") MiB/s); hashing core alone: $(mib "$ours") MiB/s"

echo "== 2. peak RSS of the verifier (/usr/bin/time -v)"
rss() { /usr/bin/time -v $rel/verifier --bucket "$BUCKET_NAME" --key "$1" 2>&1 >/dev/null | awk '/Maximum resident/ {print $6}'; }
r1=$(rss bench/1g.bin); r4=$(rss bench/4g.bin)
echo "1 GiB: $((r1 / 1024)) MiB   4 GiB: $((r4 / 1024)) MiB   4 GiB / 1 GiB: $(ratio "$r4" "$r1") (targets: <= 64 MiB, within 10%)"
[ "${2:-}" = verify ] && exit 0

echo "== 3. pre-signing 10,000 part URLs"
p=$($rel/examples/bench_presign 10000 | python3 -c "import json,sys; print(json.load(sys.stdin)['us_per_url'])")
q=$($py scripts/bench_helpers.py boto3-presign 10000 | python3 -c "import json,sys; print(json.load(sys.stdin)['us_per_url'])")
echo "verified-uploads: $(secs "$p") us/URL   boto3 generate_presigned_url: $(secs "$q") us/URL   speedup: $(ratio "$q" "$p")x (targets: <= 10 us, >= 20x)"

echo "== 4. the upload page's hashing in Chromium (hash-wasm streaming + WebCrypto per part, in its worker)"
scripts/browser.sh chromium
node browser/bench.mjs

cli_upload_bench

page_upload_bench

receipt_check_bench

segments_bench

# Section 8 needs the ports of the servers above: they go first.
kill $server $api 2>/dev/null || true
wait $server $api 2>/dev/null || true
scripts/stack.sh stop "$ddb_port"
rm -rf "$work/s3"
trap - EXIT
load_bench "$port"
