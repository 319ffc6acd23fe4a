#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/*.rs) for a set time and prints
# executions and crashes per target.
#
#   scripts/fuzz.sh                 60 s per target (SECONDS_PER_TARGET=N to change)
#   scripts/fuzz.sh --smoke         5 s per target: CI's check that the targets build and run
#   scripts/fuzz.sh session config  only these targets
#
# Needs cargo-fuzz (installed here if missing). cargo-fuzz passes nightly
# `-Z` flags (the sanitizer, coverage instrumentation) to rustc; the pinned
# stable toolchain accepts them with RUSTC_BOOTSTRAP=1, so no nightly
# toolchain is needed. Corpora grow in fuzz/corpus/TARGET (seeded from the
# repository's examples and golden files on the first run), crashes land in
# fuzz/artifacts/TARGET; neither is committed. Each crash becomes a named
# regression test (tests/reliability/regressions.rs) and the figures go to
# the README's reliability section. Exit status: 0 no crash, 1 a target
# crashed, 2 the targets could not be built.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${SECONDS_PER_TARGET:-60}"
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) seconds=5 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# Build once (optimised, with debug assertions and AddressSanitizer).
if ! cargo fuzz build -O; then
  echo "fuzz.sh: the fuzz targets do not build" >&2
  exit 2
fi

# Seed corpora from files the repository already has (first run only).
seed() {
  local target="$1"; shift
  local dir="fuzz/corpus/$target"
  mkdir -p "$dir"
  [ -n "$(ls -A "$dir")" ] && return 0
  local i=0 f
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp "$f" "$dir/seed-$i"; i=$((i + 1))
  done
}
seed config examples/*.toml tests/check/*.toml debian/dkim.toml
seed dns_record /dev/null
printf 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=' > fuzz/corpus/dns_record/seed-ed25519
printf 'v=DKIM1; h=sha256; k=rsa; s=email; t=y:s; p=' > fuzz/corpus/dns_record/seed-revoked
if [ -z "$(ls -A fuzz/corpus/opendkim_conf 2>/dev/null)" ]; then
  mkdir -p fuzz/corpus/opendkim_conf
  i=0
  for d in tests/golden/*/etc/opendkim; do
    [ -d "$d" ] || continue
    { printf '\000'; cat "$d/opendkim.conf"; printf '\000'; cat "$d/KeyTable" 2>/dev/null
      printf '\000'; cat "$d/SigningTable" 2>/dev/null; printf '\000'; cat "$d/TrustedHosts" 2>/dev/null
    } > "fuzz/corpus/opendkim_conf/seed-$i"
    i=$((i + 1))
  done
fi
seed auth_results /dev/null
printf 'mx.example.net\000From: a@example.com\r\nAuthentication-Results: mx.example.net; dkim=pass\r\n\r\nbody\r\n' \
  > fuzz/corpus/auth_results/seed-ar
seed milter_decode /dev/null
seed session /dev/null

summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  log="fuzz/artifacts/$t.log"
  echo "== $t: ${seconds}s"
  set +e
  cargo fuzz run -O "$t" -- -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -max_len=65536 >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  after=$(ls "fuzz/artifacts/$t" | wc -l)
  crashes=$((after - before))
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="?"; fi
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "   crashed (exit $rc); log: $log" >&2
    grep -m1 -E 'panicked at|ERROR: (libFuzzer|AddressSanitizer)' "$log" >&2 || true
    ls -t "fuzz/artifacts/$t" | head -1 | sed "s|^|   artifact: fuzz/artifacts/$t/|" >&2
  fi
  summary+=("$(printf '%-14s %6ss %12s executions %4s crashes' "$t" "$seconds" "${execs:-?}" "$crashes")")
done

echo
echo "target         time      executions       crashes"
printf '%s\n' "${summary[@]}"
exit "$status"
