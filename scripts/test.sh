#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine or a developer's:
# installs the real tools the tests use (OpenDKIM, Postfix, a DNS server,
# independent DKIM verifiers, systemd-nspawn), then runs formatting, lint
# and every test. Run as root (apt-get; the tests use chroot and mount
# namespaces); set CI=true to make a missing tool fail instead of skip.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  opendkim opendkim-tools miltertest   # opendkim -n, opendkim-testkey, a real milter client
  postfix swaks                        # a private Postfix instance, SMTP client
  knot knot-dnsutils                   # a DNS server on loopback, kdig
  python3-dkim libmail-dkim-perl       # independent verifiers (dkimpy, Mail::DKIM)
  systemd-container                    # systemd-nspawn for the container tests
  openssl                              # key interop checks
  iproute2                             # ip: loopback in the adoption tests' network namespaces
  m4 make                              # sendmail.cf rebuilt from sendmail.mc (apply's unit tests)
  curl                                 # scripts/peer-corpora.sh: the peers' pinned test corpora
  python3-venv groff-base dpkg-dev     # ansible-core/taplo venv, man page lint, shlibdeps for cargo-deb
  rspamd                               # benchmark peer (the bench smoke pass)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Postfix asks how to configure itself; the tests bring their own config.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages start their daemons; the tests start their own instances.
  for s in opendkim postfix knot; do
    systemctl stop "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
  done
fi

# Debian's sendmail conflicts with Postfix: its packages are downloaded
# only, for the container tests to install in their overlay.
./scripts/sendmail-debs.sh

command -v cargo-deb >/dev/null || cargo install cargo-deb --locked

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --document-private-items --quiet
cargo test --locked -- --test-threads=2
# The engine benchmark's smoke pass (a debug build, no figures kept): every
# peer starts, signs and verifies in four short cases, in about 30 s.
cargo test --locked --bench milter -- --smoke
# The fuzz targets keep building and run 5 s each (scripts/fuzz.sh for more).
./scripts/fuzz.sh --smoke
