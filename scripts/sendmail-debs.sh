#!/usr/bin/env bash
# Downloads Debian's sendmail packages, and the packages they need that a
# host with Postfix lacks, into target/sendmail-debs/ for the container
# tests (tests/sendmail.rs). sendmail-bin conflicts with Postfix, so they
# are installed only inside a container's overlay, never on the host.
#
# What to download is what `apt-get install sendmail` would install here
# (asked with -s, which changes nothing), at those versions; the list is
# kept in target/sendmail-debs/stamp, and the download is done again when
# it changes. Runs one at a time (flock); needs the Debian archive (and,
# as root, runs apt-get update when apt has no package lists).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
dir=target/sendmail-debs
exec 9> target/sendmail-debs.lock
flock 9
candidates() {
  apt-get -s -q install --no-install-recommends sendmail 2>/dev/null \
    | awk '/^Inst /{gsub(/[()]/, "", $3); print $2 "=" $3}' | sort
}
names=$(candidates)
if [ -z "$names" ] && [ ! -f "$dir/stamp" ] && [ "$(id -u)" -eq 0 ]; then
  # No package lists yet (a fresh machine whose packages are all there).
  apt-get update -qq
  names=$(candidates)
fi
if [ -z "$names" ]; then
  if [ -f "$dir/stamp" ]; then
    exit 0
  fi
  echo "sendmail-debs.sh: apt-get -s install sendmail lists nothing to install (is sendmail installed here, or are apt's lists missing? apt-get update)" >&2
  exit 1
fi
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$names" ]; then
  exit 0
fi
tmp=$(mktemp -d target/sendmail-debs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086 # one package name per word
(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root $names)
printf '%s\n' "$names" > "$tmp/stamp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "sendmail-debs.sh: $(echo $names | wc -w) packages in $dir"
