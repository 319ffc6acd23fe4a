#!/usr/bin/env bash
# The engine benchmark: `dkimctl serve` against OpenDKIM and rspamd, on this
# machine, in one run (benches/milter.rs; benches/README.md explains it).
#
#   scripts/bench.sh            the full matrix (about 15 minutes on 2 cores)
#   scripts/bench.sh --quick    one round, 1 s per case: a smoke run
#   scripts/bench.sh --only "sign-rsa 2KB" --secs 5    a subset, longer
#
# Every argument is passed to the benchmark (`--help` lists them). Installs
# what is missing (as root): OpenDKIM, knot (the loopback DNS server for the
# verify-mode runs) and rspamd. Builds the release binary and the benchmark,
# runs it under a time budget (BENCH_BUDGET, seconds; default 1500 = 25 min,
# 600 with --quick), and leaves the markdown in target/bench/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
for a in "$@"; do
  [ "$a" = "--quick" ] && quick=true
done

packages=(opendkim knot rspamd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages may start their own daemons; the benchmark starts private
  # instances on loopback and needs none of them.
  for s in opendkim knot rspamd redis-server; do
    systemctl stop "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
  done
fi

# The release binary the benchmark starts (also built by `cargo bench`,
# which points the benchmark at it through CARGO_BIN_EXE_dkimctl).
cargo build --release --locked --bin dkimctl
cargo bench --locked --bench milter --no-run

if $quick; then
  budget="${BENCH_BUDGET:-600}"
else
  budget="${BENCH_BUDGET:-1500}"
fi
mkdir -p target/bench
# timeout signals the whole process group, so the peers the benchmark
# started are stopped with it if the budget runs out.
timeout --kill-after=30 "$budget" \
  cargo bench --locked --bench milter -- --out target/bench/table.md "$@"
echo "bench.sh: table in target/bench/table.md" >&2
