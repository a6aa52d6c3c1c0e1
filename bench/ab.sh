#!/usr/bin/env bash
# ab.sh: compare builds of the bench harness on the DNS stage, alternating
# them so that the machine's drift hits each alike (single runs differ by
# about ±0.05 in the inventory's ratio here).
#
#   go build -o /tmp/bench-a ./bench      # e.g. main
#   (change something) go build -o /tmp/bench-b ./bench
#   bench/ab.sh 5 /tmp/bench-a /tmp/bench-b [-- more bench flags]
#
# Per run: the ceiling's and the inventory's queries/s, their ratio, the
# client's and the responder's CPU a query for each, and the ratio of
# whole-system CPU a query (ceiling ÷ inventory). Default bench flags:
# --only dns --domains 30000.
set -euo pipefail
n=${1:?usage: ab.sh N BENCH... [-- FLAGS]}
shift
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--only dns --domains 30000)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for i in $(seq "$n"); do
	for b in "${bins[@]}"; do
		"$b" "${flags[@]}" --out "$out" >/dev/null 2>&1
		python3 - "$b" "$out" <<'PY'
import json, os, sys
r = json.load(open(sys.argv[2]))["dns"]; i = r["inventory"]; c = r["ceiling"]
cc = r["ceiling_client_cpu_us"] + r["ceiling_responder_cpu_us"]
ic = i["client_cpu_us_per_query"] + i["responder_cpu_us_per_query"]
print("%-14s ceiling %6.0f q/s  inventory %6.0f q/s  ratio %.3f | cpu/query inventory %.2f (user %.2f)+%.2f ceiling %.2f+%.2f  system ratio %.3f" % (
    os.path.basename(sys.argv[1]), c["qps"], i["qps"], i["ratio_to_ceiling"],
    i["client_cpu_us_per_query"], i.get("client_user_us_per_query", 0), i["responder_cpu_us_per_query"],
    r["ceiling_client_cpu_us"], r["ceiling_responder_cpu_us"], cc / ic))
PY
	done
done
