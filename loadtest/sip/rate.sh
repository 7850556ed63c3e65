#!/usr/bin/env bash
# How many new SIP requests a second the server answers over UDP (docs/performance.md, "SIP
# request rate"). Starts SERVER (a release build of tandem) on loopback with a fresh database,
# sends COUNT calls of SCENARIO (options.xml or invite_challenged.xml beside this script) at RATE
# a second from 127.0.0.1 with sipp, and prints sipp's counts, the mean response time and the
# server's CPU time per answered request. Bounded: COUNT calls, each given up after sipp's
# retransmissions (about 32 s at most), and the whole run after 120 s.
#
#   loadtest/sip/rate.sh SERVER SCENARIO RATE COUNT [ABUSE_RATE]
#
# With ABUSE_RATE, a second sipp floods OPTIONS from 127.0.0.2 at that rate (the same number of
# seconds) while the first sends from 127.0.0.1, and the per-address rate limit is left at its
# default ([sip] requests_per_second 50, burst 100): does the legitimate address still get
# answered? Without it the limit is off (requests_per_second 0), as one sipp is one address.
set -euo pipefail
server=$(realpath "$1")
here=$(dirname "$(realpath "$0")")
scenario="$here/$2"
rate=$3
count=$4
abuse=${5:-}
dir=$(mktemp -d)
cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n ${abuser:-} ]] && kill "$abuser" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket,sys; s=socket.socket(type=getattr(socket,"SOCK_"+sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
http=$(free_port STREAM)
sip=$(free_port DGRAM)
export TANDEM_STORAGE_DATABASE="$dir/rate.db" TANDEM_AUTH_SECRET_FILE="$dir/secret.key"
export TANDEM_SERVER_LISTEN="127.0.0.1:$http" TANDEM_SIP_LISTEN="127.0.0.1:$sip"
export TANDEM_SIP_REQUIRE_AUTH=true RUST_LOG=error
[[ -z $abuse ]] && export TANDEM_SIP_REQUESTS_PER_SECOND=0
"$server" serve >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$http/healthz" >/dev/null && break
  sleep 0.1
done
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
tick=$(getconf CLK_TCK)
seconds=$(( (count + rate - 1) / rate ))
if [[ -n $abuse ]]; then
  timeout 120 sipp -sf "$here/options.xml" -i 127.0.0.2 -p "$(free_port DGRAM)" -r "$abuse" \
    -m $((abuse * seconds)) -nostdin -trace_screen -screen_file "$dir/abuse.txt" \
    "127.0.0.1:$sip" >/dev/null 2>&1 &
  abuser=$!
fi
before=$(cpu)
start=$(date +%s.%N)
timeout 120 sipp -sf "$scenario" -i 127.0.0.1 -p "$(free_port DGRAM)" -r "$rate" -m "$count" \
  -nostdin -trace_screen -screen_file "$dir/screen.txt" "127.0.0.1:$sip" >/dev/null 2>&1 || true
end=$(date +%s.%N)
[[ -n ${abuser:-} ]] && wait "$abuser" || true
after=$(cpu)
ok=$(awk '/Successful call/ {print $(NF)}' "$dir/screen.txt" | tail -1)
failed=$(awk '/Failed call/ {print $(NF)}' "$dir/screen.txt" | tail -1)
echo "scenario=$2 rate=$rate count=$count abuse=${abuse:-0}"
echo "answered=$ok failed=$failed seconds=$(echo "$end - $start" | bc)"
echo "server_cpu_ms=$(( (after - before) * 1000 / tick )) per_answered_us=$(( (after - before) * 1000000 / tick / (ok > 0 ? ok : 1) ))"
grep -m1 "Response Time" "$dir/screen.txt" || true
if [[ -n $abuse ]]; then
  echo "abuser: answered=$(awk '/Successful call/ {print $(NF)}' "$dir/abuse.txt" | tail -1) failed=$(awk '/Failed call/ {print $(NF)}' "$dir/abuse.txt" | tail -1)"
  curl -s "http://127.0.0.1:$http/metrics" | grep -E '^tandem_sip_(rate_limited|transactions_full)' || true
fi
