#!/usr/bin/env bash
# Builds the DKIM verification corpora that other projects publish, for the
# conformance checks of `dkimctl verify` (tests/vectors/peers/).
#
# Nothing here is committed to the repository: the peers' files are
# downloaded from package registries at test time, pinned by exact version
# and sha256, and everything is generated under target/peer-corpora/:
#
#   cache/                   the pinned archives (kept; re-used when intact)
#   src/                     the archives unpacked
#   <corpus>/messages/       one message per case, CRLF line ends
#   <corpus>/zone/*.zone     Knot zone files made from the peer's own DNS data
#   <corpus>/knot.conf.in    tests/vectors/peers/knot.conf.in with this
#                            corpus's zones filled in (@PORT@, @RUNDIR@ and
#                            @ZONEDIR@ are left for the harness)
#   <corpus>/cases.tsv       case-id, message (relative to <corpus>/),
#                            signature index or *, expected-by-peer
#
# Corpora (tests/vectors/peers/PROVENANCE.md says where each thing comes
# from; tests/vectors/peers/expectations.tsv is our own RFC verdict per case):
#   mail-dkim  Mail::DKIM t/corpus/*.txt, verdicts of t/verifier.t and
#              t/verifier_strict.t, keys from t/FAKE_DNS.dat
#   dkimpy     dkimpy dkim/tests/data messages and keys, verdicts of
#              dkim/tests/test_*.py; its sign-then-verify tests are replayed
#              with dkimpy's own signer at a fixed time
#   mail-auth  mail-auth resources/dkim/*.txt (TXT records, blank line,
#              message), verdict of its dkim_verify test
#   rfc        RFC 8463 A.3 (= mail-auth 001.txt) and RFC 6376 A.2 rebuilt
#              from mail-auth's copy of the A.1 message and the Appendix C
#              key (as printed, and with the errata's one-space body)
#
# Usage:
#   scripts/peer-corpora.sh                  download (if needed) and generate
#   scripts/peer-corpora.sh serve CORPUS PORT
#       run knotd in the foreground on 127.0.0.1:PORT with CORPUS's zones
#       (its run directory is a fresh temporary directory); stop it by
#       killing this script's PID, which stops knotd and removes that directory.
#
# Needs: bash, curl, tar, sha256sum, /usr/bin/python3 with python3-nacl
# (python3-dkim depends on it) for Ed25519 signing; knotd only for `serve`.
# Idempotent: a second run re-uses the cache and rewrites the same files.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/peer-corpora
CACHE=$OUT/cache
SRC=$OUT/src
PYTHON=${PYTHON:-/usr/bin/python3}

# ---- pinned archives ------------------------------------------------------------
#
# Mail::DKIM, Debian's source package libmail-dkim-perl. The Debian 12
# version (1.20230212-2~deb12u1) names libmail-dkim-perl_1.20230212.orig.tar.gz,
# which deb.debian.org no longer serves (404); 1.20240923 is the next upstream
# release Debian packages (trixie). Its t/corpus, t/verifier.t and
# t/FAKE_DNS.dat are 1.20230212's plus six Ed25519 cases (upstream commits
# 3aa592b, 1d37a26); see PROVENANCE.md.
MAIL_DKIM_URL=http://deb.debian.org/debian/pool/main/libm/libmail-dkim-perl/libmail-dkim-perl_1.20240923.orig.tar.gz
MAIL_DKIM_SHA256=45de46f5dc4d23bcb6ad6401759881dd43968eab20e73f6f79d9557467de20ee
MAIL_DKIM_DIR=Mail-DKIM-1.20240923

# dkimpy 1.1.8, the sdist on PyPI (the URL is PyPI's own for that file, as its
# simple index lists it; the same as `pip download --no-deps --no-binary :all:
# dkimpy==1.1.8` fetches, without running its build backend).
DKIMPY_URL=https://files.pythonhosted.org/packages/f0/6f/84e91828186bbfcedd7f9385ef5e0d369632444195c20e08951b7ffe0481/dkimpy-1.1.8.tar.gz
DKIMPY_SHA256=b5f60fb47bbf5d8d762f134bcea0c388eba6b498342a682a21f1686545094b77
DKIMPY_DIR=dkimpy-1.1.8

# mail-auth 0.13.3, the crate dkimctl itself builds on (Cargo.lock's
# checksum). Taken from the local cargo cache when it is there, else from
# crates.io's download host.
MAIL_AUTH_URL=https://static.crates.io/crates/mail-auth/mail-auth-0.13.3.crate
MAIL_AUTH_SHA256=8505122ba86e1f4adeb664196c1e787c3f29bb6e7c128e4a366d47d209911440
MAIL_AUTH_DIR=mail-auth-0.13.3

die() {
  echo "peer-corpora: $*" >&2
  exit 1
}

sha256_of() {
  sha256sum "$1" | cut -d' ' -f1
}

# fetch URL SHA256 FILE: FILE in the cache with that sha256, downloading it
# when missing. A cached file with another sum is fetched again; a download
# with another sum is an error.
fetch() {
  local url=$1 want=$2 dest=$CACHE/$3
  mkdir -p "$CACHE"
  if [ -f "$dest" ]; then
    if [ "$(sha256_of "$dest")" = "$want" ]; then
      return 0
    fi
    echo "peer-corpora: $dest has the wrong sha256; fetching it again" >&2
    rm -f "$dest"
  fi
  echo "peer-corpora: fetching $url" >&2
  curl -fsSL --retry 2 -o "$dest.part" "$url" || die "download failed: $url"
  local got
  got=$(sha256_of "$dest.part")
  if [ "$got" != "$want" ]; then
    rm -f "$dest.part"
    die "SHA256 MISMATCH for $url: expected $want, got $got"
  fi
  mv "$dest.part" "$dest"
}

# The crate from ~/.cargo's cache when it has the pinned sum.
seed_crate_from_cargo_cache() {
  local f
  [ -f "$CACHE/$MAIL_AUTH_DIR.crate" ] && return 0
  for f in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$MAIL_AUTH_DIR.crate"; do
    if [ -f "$f" ] && [ "$(sha256_of "$f")" = "$MAIL_AUTH_SHA256" ]; then
      mkdir -p "$CACHE"
      cp "$f" "$CACHE/$MAIL_AUTH_DIR.crate"
      return 0
    fi
  done
}

# unpack ARCHIVE DIR: a fresh copy of ARCHIVE's top directory DIR in src/.
unpack() {
  local archive=$CACHE/$1 dir=$2
  mkdir -p "$SRC"
  rm -rf "${SRC:?}/$dir"
  tar -xzf "$archive" -C "$SRC" "$dir"
  [ -d "$SRC/$dir" ] || die "$1 has no $dir/"
}

# ---- serve ----------------------------------------------------------------------

if [ "${1:-}" = serve ]; then
  corpus=${2:?usage: peer-corpora.sh serve CORPUS PORT}
  port=${3:?usage: peer-corpora.sh serve CORPUS PORT}
  case "$port" in *[!0-9]*) die "PORT must be a number" ;; esac
  conf_in=$OUT/$corpus/knot.conf.in
  [ -f "$conf_in" ] || die "no $conf_in; run scripts/peer-corpora.sh first"
  run=$(mktemp -d)
  mkdir -p "$run/run" "$run/db"
  zonedir=$(cd "$OUT/$corpus/zone" && pwd)
  sed -e "s|@PORT@|$port|g" -e "s|@RUNDIR@|$run|g" -e "s|@ZONEDIR@|$zonedir|g" \
    "$conf_in" >"$run/knot.conf"
  echo "peer-corpora: knotd for $corpus on 127.0.0.1:$port (config $run/knot.conf)" >&2
  knotd -c "$run/knot.conf" &
  knotd_pid=$!
  # Killing this script (by its PID) stops knotd and removes the run directory.
  trap 'kill "$knotd_pid" 2>/dev/null; wait "$knotd_pid" 2>/dev/null; rm -rf "$run"' EXIT
  trap 'exit 143' TERM INT
  wait "$knotd_pid"
  exit
fi

# ---- download and unpack ----------------------------------------------------------

command -v curl >/dev/null || die "curl is missing"
[ -x "$PYTHON" ] || die "$PYTHON is missing"
"$PYTHON" -c 'import nacl.signing' 2>/dev/null ||
  die "$PYTHON lacks PyNaCl (apt-get install python3-nacl; python3-dkim depends on it)"

fetch "$MAIL_DKIM_URL" "$MAIL_DKIM_SHA256" "$(basename "$MAIL_DKIM_URL")"
fetch "$DKIMPY_URL" "$DKIMPY_SHA256" "$(basename "$DKIMPY_URL")"
seed_crate_from_cargo_cache
fetch "$MAIL_AUTH_URL" "$MAIL_AUTH_SHA256" "$MAIL_AUTH_DIR.crate"

unpack "$(basename "$MAIL_DKIM_URL")" "$MAIL_DKIM_DIR"
unpack "$(basename "$DKIMPY_URL")" "$DKIMPY_DIR"
unpack "$MAIL_AUTH_DIR.crate" "$MAIL_AUTH_DIR"

for c in mail-dkim dkimpy mail-auth rfc; do
  rm -rf "${OUT:?}/$c"
done

# ---- generate -----------------------------------------------------------------------
#
# One Python program does all four corpora. It reads only the unpacked
# archives and writes only below $OUT. dkimpy's signer (from the sdist, not
# the system's python3-dkim) replays dkimpy's sign-then-verify tests; time.time
# is fixed so that the output is the same on every run.
"$PYTHON" - "$OUT" "$SRC/$MAIL_DKIM_DIR" "$SRC/$DKIMPY_DIR" "$SRC/$MAIL_AUTH_DIR" \
  tests/vectors/peers/knot.conf.in <<'PY'
import ast
import base64
import os
import re
import sys
import time

OUT, MAIL_DKIM, DKIMPY, MAIL_AUTH, KNOT_CONF_IN = sys.argv[1:6]

# dkimpy's signs at this time (t=); 2023-11-14T22:13:20Z.
FIXED_TIME = 1700000000


def crlf(data):
    """LF or CRLF line ends -> CRLF (a lone CR stays)."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- zones ------------------------------------------------------------------------


def zone_label(label):
    """A label as a zone file writes it: \\DDD for anything but LDH, _ and *."""
    return "".join(
        c if re.match(r"[A-Za-z0-9_*-]", c) else "\\%03d" % b
        for c, b in ((chr(b), b) for b in label.encode("latin-1"))
    )


def txt_rdata(value):
    """A TXT value as quoted character-strings of at most 255 octets."""
    raw = value.encode("latin-1") if isinstance(value, str) else value
    parts = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    out = []
    for p in parts:
        s = "".join(
            chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else "\\%03d" % b
            for b in p
        )
        out.append('"%s"' % s)
    return " ".join(out)


class Corpus:
    """Messages, DNS data and cases of one corpus."""

    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(OUT, name)
        os.makedirs(os.path.join(self.dir, "messages"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "zone"), exist_ok=True)
        self.records = {}  # owner (lower case, no trailing dot) -> [value]
        self.empty = set()  # zones served with no records but SOA/NS
        self.servfail = set()  # zones knotd cannot load: SERVFAIL
        self.rows = []
        self.lf_only = []

    def message(self, name, data, note_lf=True):
        """Writes messages/NAME (CRLF); returns its path relative to the corpus."""
        if note_lf and b"\n" in data and b"\r\n" not in data:
            self.lf_only.append(name)
        rel = "messages/" + name
        with open(os.path.join(self.dir, rel), "wb") as f:
            f.write(crlf(data))
        return rel

    def txt(self, owner, value):
        owner = owner.rstrip(".").lower()
        values = self.records.setdefault(owner, [])
        if value in values:
            return
        if values:
            raise SystemExit(
                "%s: two different records for %s: %r and %r"
                % (self.name, owner, values[0], value)
            )
        values.append(value)

    def nxdomain(self, owner):
        """The name does not exist: its zone is served without it."""
        self.empty.add(zone_of(owner.rstrip(".").lower(), self.servfail))

    def case(self, case_id, rel, sig, peer):
        assert "\t" not in case_id + rel + str(sig) + peer
        self.rows.append((case_id, rel, str(sig), peer))

    def write(self):
        zones = {}
        for owner, values in self.records.items():
            zone = zone_of(owner, self.servfail)
            if zone in self.servfail:
                raise SystemExit("%s: %s is inside SERVFAIL zone %s" % (self.name, owner, zone))
            zones.setdefault(zone, []).append((owner, values))
        for zone in self.empty:
            zones.setdefault(zone, [])
        names = sorted(set(zones) | self.servfail)
        for zone in names:
            path = os.path.join(self.dir, "zone", zone + ".zone")
            with open(path, "w", encoding="latin-1") as f:
                if zone in self.servfail:
                    # No SOA: knotd fails to load this zone and answers
                    # SERVFAIL for every name in it (the peer's simulated
                    # DNS failure; see PROVENANCE.md).
                    f.write("; %s: deliberately without SOA -> SERVFAIL\n" % zone)
                    continue
                f.write("; %s corpus, generated by scripts/peer-corpora.sh\n" % self.name)
                f.write("$ORIGIN %s.\n$TTL 60\n" % zone)
                f.write("@ IN SOA ns hostmaster 1 60 60 600 60\n@ IN NS ns\nns IN A 127.0.0.1\n")
                for owner, values in sorted(zones[zone]):
                    rel = owner[: -len(zone) - 1]
                    name = ".".join(zone_label(l) for l in rel.split("."))
                    for v in values:
                        f.write("%s IN TXT %s\n" % (name, txt_rdata(v)))
        with open(KNOT_CONF_IN) as f:
            template = f.read()
        zone_conf = "".join(
            '  - domain: %s\n    file: "%s.zone"\n' % (z, z) for z in names
        )
        with open(os.path.join(self.dir, "knot.conf.in"), "w") as f:
            f.write(template.replace("@ZONES@\n", zone_conf))
        with open(os.path.join(self.dir, "cases.tsv"), "w") as f:
            f.write("# case-id\tmessage\tsignature\texpected-by-peer\n")
            for row in self.rows:
                f.write("\t".join(row) + "\n")
        with open(os.path.join(self.dir, "lf-only.txt"), "w") as f:
            f.write("# messages whose original had LF line ends only (written here as CRLF)\n")
            for n in self.lf_only:
                f.write(n + "\n")
        print("%-10s %4d cases, %3d messages, %2d zones" % (
            self.name, len(self.rows), len(os.listdir(os.path.join(self.dir, "messages"))),
            len(names)))


def zone_of(owner, servfail=()):
    """The zone an owner is served from: a SERVFAIL zone above it, else its
    last two labels."""
    for z in servfail:
        if owner == z or owner.endswith("." + z):
            return z
    return ".".join(owner.split(".")[-2:])


def signature_count(data):
    """How many DKIM-Signature fields the header section has."""
    head = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    return len(re.findall(rb"(?im)^dkim-signature[ \t]*:", head))


# ---- Mail::DKIM -----------------------------------------------------------------------
#
# t/FAKE_DNS.dat: "name value" per line; value "NXDOMAIN" or "~~error~~"
# (a DNS error the test's fake resolver raises: "Query timed out",
# "SERVFAIL"). t/verifier.t: test_email("file", "result"); calls inside a
# SKIP block with an unconditional skip are not run by the peer; per-
# signature checks ($sigs[N]->result eq "x") follow the test_email of their
# message. t/verifier_strict.t: test_email_strict("file", "result").


def mail_dkim():
    c = Corpus("mail-dkim")
    t = os.path.join(MAIL_DKIM, "t")
    for line in read(os.path.join(t, "FAKE_DNS.dat")).decode("latin-1").splitlines():
        if re.match(r"^\s*[#;]", line) or not line.strip():
            continue
        name, value = re.split(r"\s+", line, maxsplit=1)
        m = re.match(r"^~~(.*)~~$", value)
        if m:
            # "test3._domainkey.blackhole.messiah.edu ~~Query timed out~~":
            # the signing domain's zone fails (SERVFAIL from knotd).
            c.servfail.add(name.lower().split("._domainkey.", 1)[1])
        elif value == "NXDOMAIN":
            c.nxdomain(name)
        elif value == '""':
            # The fake record's text is the two characters "" and stands for
            # an empty key record; served as one empty character-string.
            c.txt(name, "")
        else:
            c.txt(name, value)
    # Every signing domain of the corpus has a zone, so that a key that
    # FAKE_DNS.dat lacks is NXDOMAIN (the peer's fake resolver dies there).
    corpus = os.path.join(t, "corpus")
    messages = {}
    for fn in sorted(os.listdir(corpus)):
        data = read(os.path.join(corpus, fn))
        messages[fn] = (c.message(fn.replace(".txt", ".eml"), data), signature_count(data))
        for d in re.findall(rb"(?i)[;\s]d=([A-Za-z0-9.-]+)", re.split(rb"\r?\n\r?\n", data, 1)[0]):
            c.nxdomain("x._domainkey." + d.decode().lower())

    def add(case_prefix, fn, peer, sig_results):
        rel, n = messages[fn]
        cid = case_prefix + fn[:-4]
        if n == 0:
            c.case(cid, rel, "*", peer)
        elif n == 1:
            c.case(cid, rel, 0, peer)
        else:
            c.case(cid, rel, "*", peer)
            for i in range(n):
                c.case(cid, rel, i, sig_results.get(i, "-"))

    text = read(os.path.join(t, "verifier.t")).decode()
    calls = []  # [file, result, skipped, {sig: result}]
    skip_depth, depth, skipping = None, 0, False
    for line in text.splitlines():
        if re.match(r"^\s*SKIP:", line):
            skip_depth = depth
        depth += line.count("{") - line.count("}")
        if skip_depth is not None:
            if re.search(r'^\s*skip\s+"[^"]*"\s*,\s*\d+\s*;', line):
                skipping = True
            if depth <= skip_depth and "}" in line:
                skip_depth, skipping = None, False
        m = re.search(r'test_email\(\s*"([^"]+)"\s*,\s*"(\w+)"\s*\)', line)
        if m:
            calls.append([m.group(1), m.group(2), skipping, {}])
        m = re.search(r'\$(?:sigs|dksigs)\[(\d+)\]->result eq "(\w+)"', line)
        if m:
            calls[-1][3][int(m.group(1))] = m.group(2)
    for fn, result, skipped, sigs in calls:
        add("", fn, ("skipped:" if skipped else "") + result, sigs)
    strict = read(os.path.join(t, "verifier_strict.t")).decode()
    for fn, result in re.findall(r'test_email_strict\(\s*"([^"]+)"\s*,\s*"(\w+)"\s*\)', strict):
        add("strict:", fn, result, {})
    c.write()


# ---- dkimpy ---------------------------------------------------------------------------
#
# The tests' DNS tables (dnsfunc, dnsfunc2, ...) and inline keys and
# messages are read from the test sources with ast, not copied. The
# sign-then-verify tests are replayed: each dkim.sign call of a test becomes
# one message (sig + message, as the test verifies it), with the test's
# assertTrue/assertFalse as the expected verdict of signature 0
# (dkim.verify checks the first signature only). Where two tests publish
# different records under one name, the replayed signature uses another
# selector (named after the test's dnsfunc) so that one DNS server can serve
# every case; PROVENANCE.md lists them.


def ast_tables(path):
    """{function: {name: value}} of every dnsfunc*, plus every test's string
    assignments ({test: {var: value}})."""
    tree = ast.parse(read(path).decode(), path)
    data_dir = os.path.join(os.path.dirname(path), "data")
    dns, consts = {}, {}

    def value(node, env):
        if isinstance(node, ast.Constant):
            return node.value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "replace"
            and isinstance(node.func.value, ast.Constant)
        ):
            # b"""...""".replace(b'\n', b'\r\n'), as sample_msg is written.
            return node.func.value.value.replace(*(value(a, env) for a in node.args))
        if isinstance(node, ast.Name) and node.id in env:
            return env[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "read_test_data"
        ):
            return read(os.path.join(data_dir, node.args[0].value))
        raise SystemExit("%s: cannot evaluate %s" % (path, ast.dump(node)))

    for cls in tree.body:
        if not isinstance(cls, ast.ClassDef):
            continue
        for fn in cls.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            env = {}
            for st in ast.walk(fn):
                if isinstance(st, ast.Assign) and isinstance(st.targets[0], ast.Name):
                    var = st.targets[0].id
                    if isinstance(st.value, ast.Dict):
                        env[var] = {
                            value(k, env): value(v, env) for k, v in zip(st.value.keys, st.value.values)
                        }
                    elif isinstance(st.value, (ast.Constant, ast.Call)):
                        try:
                            env[var] = value(st.value, env)
                        except (SystemExit, KeyError, AttributeError, IndexError):
                            pass  # not a literal (e.g. dkim.sign(...)); not needed
            if fn.name.startswith("dnsfunc"):
                table = {}
                for k, v in env["_dns_responses"].items():
                    v = v.decode() if isinstance(v, bytes) else v
                    # data/*.txt end in a newline, which is no part of the record.
                    table[k.rstrip(".")] = v.strip()
                dns[fn.name] = table
            else:
                consts[fn.name] = env
    return dns, consts


def dkimpy():
    c = Corpus("dkimpy")
    sys.path.insert(0, DKIMPY)
    import dkim  # the sdist's, not the system's

    assert dkim.__file__.startswith(os.path.abspath(DKIMPY)), dkim.__file__
    time.time = lambda: FIXED_TIME
    tests = os.path.join(DKIMPY, "dkim", "tests")
    data = lambda n: read(os.path.join(tests, "data", n))
    t_rsa, k_rsa = ast_tables(os.path.join(tests, "test_dkim.py"))
    t_ed, k_ed = ast_tables(os.path.join(tests, "test_dkim_ed25519.py"))
    t_var, _ = ast_tables(os.path.join(tests, "test_dkim_rsavariants.py"))
    t_tls, _ = ast_tables(os.path.join(tests, "test_dkim_tlsrpt.py"))
    canons = [(h, b) for h in (b"simple", b"relaxed") for b in (b"simple", b"relaxed")]
    cname = lambda cz: "%s-%s" % (cz[0].decode(), cz[1].decode())

    def publish(table, selector, domain, as_selector=None):
        """The record the test's dnsfunc gives for selector._domainkey.domain,
        published under as_selector (default: the same selector)."""
        value = table["%s._domainkey.%s" % (selector, domain)]
        c.txt("%s._domainkey.%s" % ((as_selector or selector), domain), value)

    def replay(case_id, msg, expect, **kw):
        """dkim.sign(msg, **kw); the case is sig + msg, signature 0."""
        sig = dkim.sign(msg, **kw)
        signed = sig + msg
        rel = c.message(case_id + ".eml", signed, note_lf=False)
        c.case(case_id, rel, 0, expect)
        for i in range(1, signature_count(crlf(signed))):
            c.case(case_id, rel, i, "-")
        return sig

    def static(case_id, msg, expect, sigs=None):
        rel = c.message(case_id + ".eml", msg)
        n = signature_count(crlf(msg))
        if n == 0:
            c.case(case_id, rel, "*", expect)
        for i in range(n):
            c.case(case_id, rel, i, expect if i == 0 else "-")

    T, F = "True", "False"
    message = data("test.message")
    key = data("test.private")

    # test_dkim.py, class TestSignAndVerify.
    D = t_rsa
    publish(D["dnsfunc"], "test", "example.com")
    for cz in canons:
        replay("test_dkim.test_verifies." + cname(cz), message, T, selector=b"test",
               domain=b"example.com", privkey=key, canonicalize=cz)
    static("test_dkim.test_verifies_nosig", message, F)
    publish(D["dnsfunc5"], "test", "football.example.com")
    publish(D["dnsfunc5"], "brisbane", "football.example.com")
    for cz in canons:
        replay("test_dkim.test_double_verifies." + cname(cz), data("rfc6376.msg"), T,
               selector=b"test", domain=b"football.example.com", privkey=key,
               canonicalize=cz, signature_algorithm=b"rsa-sha256")
    # test_double_previous_verifies (and test_dkim_ed25519's
    # test_rfc8032_previous_verifies): verify() checks signature 0 only.
    static("test_dkim.test_double_previous_verifies", data("rfc6376.signed.msg"), T)
    # test_non_utf8 verifies the unsigned message7 (its sign result is unused).
    static("test_dkim.test_non_utf8", data("rfc6376.w1258.msg"), F)
    static("test_dkim.test_no_t", data("rfc6376.signed.no_t.msg"), F)
    # test_catch_bad_key: dnsfunc6 has a damaged key at test._domainkey.
    # football.example.com, where dnsfunc5 (above) has a good one. The
    # message's s=test becomes s=test-dnsfunc6 (the key is never usable, so
    # the signature bytes do not matter).
    publish(D["dnsfunc6"], "test", "football.example.com", "test-dnsfunc6")
    bad = data("rfc6376.signed.rsa.msg")
    assert bad.count(b"s=test;") == 1
    static("test_dkim.test_catch_bad_key.s-renamed", bad.replace(b"s=test;", b"s=test-dnsfunc6;"), F)
    for cz in canons:
        replay("test_dkim.test_verifies_lflinesep." + cname(cz), message, T, selector=b"test",
               domain=b"example.com", privkey=key, canonicalize=cz, linesep=b"\n")
    for fn, tag in (("dnsfunc2", "test_implicit_k"), ("dnsfunc3", "test_bad_version"),
                    ("dnsfunc4", "test_unknown_k")):
        sel = "test-" + fn
        publish(D[fn], "test", "example.com", sel)
        for cz in canons:
            replay("test_dkim.%s.%s" % (tag, cname(cz)), message,
                   T if tag == "test_implicit_k" else F,
                   selector=sel.encode(), domain=b"example.com", privkey=key, canonicalize=cz)
    # test_invalid_domain_sign / _verify: d=legitimate.com(.attacker.com,
    # whose key dnsfunc7 does publish.
    publish(D["dnsfunc7"], "test", "legitimate.com(.attacker.com")
    replay("test_dkim.test_invalid_domain_sign", message, F, selector=b"test",
           domain=b"legitimate.com(.attacker.com", privkey=key)
    static("test_dkim.test_invalid_domain_verify", data("test.message.baddomain"), F)
    for cz in canons:
        replay("test_dkim.test_simple_signature." + cname(cz), message, T, selector=b"test",
               domain=b"example.com", privkey=key, canonicalize=cz,
               include_headers=(b"from",) + dkim.DKIM.SHOULD)
    for cz in canons:
        replay("test_dkim.test_string_include." + cname(cz), message, T, selector=b"test",
               domain=b"example.com", privkey=key, canonicalize=cz, include_headers=("from",))
    replay("test_dkim.test_add_body_length", message, T, selector=b"test",
           domain=b"example.com", privkey=key, length=True)
    sig = dkim.sign(message, b"test", b"example.com", key)
    c.case("test_dkim.test_altered_body_fails",
           c.message("test_dkim.test_altered_body_fails.eml", sig + message + b"foo", False), 0, F)
    # test_l_verify: the message grows by one line per iteration.
    grown = message
    for cz in canons:
        sig = dkim.sign(grown, b"test", b"example.com", key, canonicalize=cz, length=True)
        grown += b"added more text\n"
        rel = c.message("test_dkim.test_l_verify.%s.eml" % cname(cz), sig + grown, False)
        c.case("test_dkim.test_l_verify." + cname(cz), rel, 0, T)
    # test_badly_encoded_domain_fails: d=example.com\xe9 (a Latin-1 byte).
    replay("test_dkim.test_badly_encoded_domain_fails", message, F, selector=b"test",
           domain=b"example.com\xe9", privkey=key)
    # test_dkim_signature_canonicalization: a 512-bit key, verified with
    # minkey=512; the header refolded by dkim.fold, then with its last fold a
    # tab.
    env = k_rsa["test_dkim_signature_canonicalization"]
    publish(D["dnsfunc"], "example", "canonical.com")
    for mode in (b"relaxed", b"simple"):
        h = dkim.sign(env["sample_msg"], b"example", b"canonical.com", env["sample_privkey"],
                      canonicalize=(mode, b"relaxed"))
        cid = "test_dkim.test_dkim_signature_canonicalization.%s" % mode.decode()
        c.case(cid + ".folded", c.message(cid + ".folded.eml", dkim.fold(h) + env["sample_msg"],
                                          False), 0, "True(minkey=512)")
        h = dkim.fold(h)
        pos = h.rindex(b"\r\n ")
        h = h[:pos] + b"\r\n\t" + h[pos + 3:]
        c.case(cid + ".tab", c.message(cid + ".tab.eml", h + env["sample_msg"], False), 0,
               "True(minkey=512)")
    publish(D["dnsfunc"], "20120113", "gmail.com")
    static("test_dkim.test_degenerate_folding", data("test2.message"), T)
    # message.mbox carries kitterman.com's own signature, which no test
    # checks and whose key is not in the tests: its zone is served without
    # it (NXDOMAIN).
    c.nxdomain("2007-00._domainkey.kitterman.com")
    mbox = data("message.mbox")
    for cz in canons:
        d = dkim.DKIM(mbox)
        d.should_not_sign.remove(b"received")
        sig = d.sign(b"test", b"example.com", key, include_headers=d.all_sign_headers(),
                     canonicalize=cz)
        cid = "test_dkim.test_extra_headers." + cname(cz)
        rel = c.message(cid + ".eml", sig + mbox, False)
        c.case(cid, rel, 0, T)
        c.case(cid, rel, 1, "-")
    # test_multiple_from_fails: X-Foo added (True), a second From at the end
    # or at the top of the header (False).
    hfrom = k_rsa["test_multiple_from_fails"]["hfrom"]
    head, body = message.split(b"\n\n", 1)
    sig = dkim.sign(message, b"test", b"example.com", key)
    for tag, h1, want in (("x-foo-added", head + b"\r\n" + b"X-Foo: bar", T),
                          ("from-appended", head + b"\r\n" + hfrom.strip(), F),
                          ("from-prepended", hfrom + head, F)):
        cid = "test_dkim.test_multiple_from_fails." + tag
        c.case(cid, c.message(cid + ".eml", sig + b"\n\n".join((h1, body)), False), 0, want)

    # test_dkim_ed25519.py, class TestSignAndVerify.
    E = t_ed
    emsg, ekey = data("ed25519test.msg"), data("ed25519test.key")
    ed = dict(signature_algorithm=b"ed25519-sha256")
    publish(E["dnsfunc"], "test", "example.net")
    for cz in canons:
        replay("test_dkim_ed25519.test_verifies." + cname(cz), emsg, T, selector=b"test",
               domain=b"example.net", privkey=ekey, canonicalize=cz, **ed)
    publish(E["dnsfunc"], "brisbane", "football.example.com")
    for cz in canons:
        replay("test_dkim_ed25519.test_rfc8032_verifies." + cname(cz), data("rfc6376.msg"), T,
               selector=b"brisbane", domain=b"football.example.com",
               privkey=data("rfc8032_7_1.key"), canonicalize=cz, **ed)
    for cz in canons:
        replay("test_dkim_ed25519.test_simple_signature." + cname(cz), emsg, T, selector=b"test",
               domain=b"example.net", privkey=ekey, canonicalize=cz,
               include_headers=(b"from",) + dkim.DKIM.SHOULD, **ed)
    publish(E["dnsfunc"], "sed", "test.ex")
    static("test_dkim_ed25519.test_verify_third_party", data("ed25519test2.msg"), T)
    replay("test_dkim_ed25519.test_add_body_length", emsg, T, selector=b"test",
           domain=b"example.net", privkey=ekey, length=True, **ed)
    sig = dkim.sign(emsg, b"test", b"example.net", ekey, **ed)
    c.case("test_dkim_ed25519.test_altered_body_fails",
           c.message("test_dkim_ed25519.test_altered_body_fails.eml", sig + emsg + b"foo", False),
           0, F)
    replay("test_dkim_ed25519.test_badly_encoded_domain_fails", emsg, F, selector=b"test",
           domain=b"example.net\xe9", privkey=ekey, **ed)
    # Its canonicalization test publishes an Ed25519 key at
    # example._domainkey.canonical.com, where test_dkim.py has RSA: selector
    # example-ed25519 here.
    env = k_ed["test_dkim_signature_canonicalization"]
    publish(E["dnsfunc"], "example", "canonical.com", "example-ed25519")
    for mode in (b"relaxed", b"simple"):
        h = dkim.sign(env["sample_msg"], b"example-ed25519", b"canonical.com",
                      env["sample_privkey"], canonicalize=(mode, b"relaxed"), **ed)
        cid = "test_dkim_ed25519.test_dkim_signature_canonicalization.%s" % mode.decode()
        c.case(cid + ".folded", c.message(cid + ".folded.eml", dkim.fold(h) + env["sample_msg"],
                                          False), 0, T)
        h = dkim.fold(h)
        pos = h.rindex(b"\r\n ")
        h = h[:pos] + b"\r\n\t" + h[pos + 3:]
        c.case(cid + ".tab", c.message(cid + ".tab.eml", h + env["sample_msg"], False), 0, T)
    for cz in canons:
        d = dkim.DKIM(mbox)
        d.should_not_sign.remove(b"received")
        sig = d.sign(b"test", b"example.net", ekey, include_headers=d.all_sign_headers(),
                     canonicalize=cz, **ed)
        cid = "test_dkim_ed25519.test_extra_headers." + cname(cz)
        rel = c.message(cid + ".eml", sig + mbox, False)
        c.case(cid, rel, 0, T)
        c.case(cid, rel, 1, "-")
    hfrom = k_ed["test_multiple_from_fails"]["hfrom"]
    head, body = emsg.split(b"\n\n", 1)
    sig = dkim.sign(emsg, b"test", b"example.net", ekey, **ed)
    for tag, h1, want in (("x-foo-added", head + b"\r\n" + b"X-Foo: bar", T),
                          ("from-appended", head + b"\r\n" + hfrom.strip(), F),
                          ("from-prepended", hfrom + head, F)):
        cid = "test_dkim_ed25519.test_multiple_from_fails." + tag
        c.case(cid, c.message(cid + ".eml", sig + b"\n\n".join((h1, body)), False), 0, want)

    # test_dkim_rsavariants.py: RSA keys as SubjectPublicKeyInfo and as
    # PKCS#1 RSAPublicKey, 1024 and 2048 bits. Its test._domainkey.
    # example.com differs from test_dkim.py's: selector test-rsavariants.
    V = t_var["dnsfunc"]
    for tag, sel, keyfile, as_sel in (
        ("test_verifies_SubjectPublicKeyInfo1024", "test", "1024_testkey.key", "test-rsavariants"),
        ("test_verifies_RSAPublicKey1024", "test2", "1024_testkey.key", None),
        ("test_verifiesSubjectPublicKeyInfo2048", "test3", "2048_testkey.key", None),
        ("test_verifiesRSAPublicKey2048", "test4", "2048_testkey.key", None),
        ("test_verifies_RSAPublicKey2048PKCS8", "test5", "2048_testkey_PKCS8.key", None),
    ):
        publish(V, sel, "example.com", as_sel)
        for cz in canons:
            replay("test_dkim_rsavariants.%s.%s" % (tag, cname(cz)), message, T,
                   selector=(as_sel or sel).encode(), domain=b"example.com",
                   privkey=data(keyfile), canonicalize=cz)

    # test_dkim_tlsrpt.py: only what a mail verifier (tlsrpt=False) does.
    # test_ignores_tlsrptsvc: a key with s=tlsrpt (dnsfunc6).
    publish(t_tls["dnsfunc6"], "test", "example.com", "test-tlsrpt")
    for cz in canons:
        replay("test_dkim_tlsrpt.test_ignores_tlsrptsvc." + cname(cz), message, F,
               selector=b"test-tlsrpt", domain=b"example.com", privkey=key, canonicalize=cz)
    # test_tlsrpt_ignore_l_sign: signed as a TLS report (no l=), text added.
    grown = message
    for cz in canons:
        sig = dkim.sign(grown, b"test", b"example.com", key, canonicalize=cz, length=True,
                        tlsrpt=True)
        grown += b"added more text"
        cid = "test_dkim_tlsrpt.test_tlsrpt_ignore_l_sign." + cname(cz)
        c.case(cid, c.message(cid + ".eml", sig + grown, False), 0, F)
    # Every generated message had LF line ends (dkimpy's data files do).
    c.lf_only = ["(all: dkimpy's data files and the replayed messages use LF)"] + c.lf_only
    c.write()


# ---- mail-auth ----------------------------------------------------------------------------
#
# resources/dkim/NNN.txt: "name value" lines, a blank line, the message
# (LF; the test turns LF into CRLF). Its dkim_verify test asserts that the
# LAST signature of each message passes, at the fixed time 1667843664.


def mail_auth():
    c = Corpus("mail-auth")
    d = os.path.join(MAIL_AUTH, "resources", "dkim")
    for fn in sorted(os.listdir(d)):
        text = read(os.path.join(d, fn))
        records, msg = text.split(b"\n\n", 1)
        for line in records.decode().split("\n"):
            name, value = line.split(" ", 1)
            c.txt(name, value)
        rel = c.message(fn.replace(".txt", ".eml"), msg)
        n = signature_count(crlf(msg))
        for i in range(n):
            c.case(fn[:-4], rel, i, "pass@1667843664" if i == n - 1 else "-")
    c.write()


# ---- RFC examples -------------------------------------------------------------------------
#
# RFC 8463 A.3 is mail-auth's resources/dkim/001.txt (records A.2, message
# A.3). RFC 6376 A.2 is rebuilt: the A.1 message from mail-auth's 002.txt
# (which re-signs it with another key), the A.2 DKIM-Signature field with
# its tags and folding, b= computed with the Appendix C private key (printed
# in mail-auth's examples/dkim_sign.rs) and checked against the b= that
# A.2 prints (it starts "AuUoFEfD"), the A.3 record made from the same key.
# Two bodies: as printed ("game.  Are", two spaces, the RFC's typesetting)
# and with the errata's single space.


def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(n):
    b = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return der(0x02, b)


def rfc():
    c = Corpus("rfc")
    sys.path.insert(0, DKIMPY)
    import dkim
    from dkim.crypto import parse_pem_private_key, RSASSA_PKCS1_v1_5_sign
    from dkim.canonicalization import CanonicalizationPolicy
    import hashlib

    # RFC 8463 A.3.
    text = read(os.path.join(MAIL_AUTH, "resources", "dkim", "001.txt"))
    records, msg = text.split(b"\n\n", 1)
    for line in records.decode().split("\n"):
        name, value = line.split(" ", 1)
        c.txt(name, value)
    rel = c.message("rfc8463-a3.eml", msg)
    # The RFC presents the example as signed correctly.
    c.case("rfc8463-a3", rel, 0, "pass(RFC8463-A.3)")
    c.case("rfc8463-a3", rel, 1, "pass(RFC8463-A.3)")

    # RFC 6376 Appendix C's private key, from mail-auth's example.
    src = read(os.path.join(MAIL_AUTH, "examples", "dkim_sign.rs")).decode()
    pem = re.search(r"-----BEGIN RSA PRIVATE KEY-----.*?-----END RSA PRIVATE KEY-----", src,
                    re.S).group(0).encode()
    pk = parse_pem_private_key(pem)
    spki = der(0x30, der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
               + der(0x03, b"\x00" + der(0x30, der_int(pk["modulus"]) + der_int(pk["publicExponent"]))))
    c.txt("brisbane._domainkey.example.com", "v=DKIM1; p=" + base64.b64encode(spki).decode())

    # The A.1 message (Received ... body) from mail-auth's 002.txt.
    a1 = crlf(read(os.path.join(MAIL_AUTH, "resources", "dkim", "002.txt")).split(b"\n\n", 1)[1])
    a1 = a1[a1.index(b"Received: from client1.football.example.com"):]
    head, body = a1.split(b"\r\n\r\n", 1)
    assert b"We lost the game. Are you hungry yet?" in body
    # A.2's field: tags and folding as printed (six-space continuation
    # lines); b= left empty for hashing (RFC 6376 3.7).
    lines = [
        b"DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;",
        b"      c=simple/simple; q=dns/txt; i=joe@football.example.com;",
        b"      h=Received : From : To : Subject : Date : Message-ID;",
        b"      bh=" + base64.b64encode(hashlib.sha256(body).digest()) + b";",
        b"      b=",
    ]
    field = b"\r\n".join(lines)
    # simple/simple: the signed fields as they are, then the DKIM-Signature
    # field without its final CRLF.
    fields = {}
    for f in re.split(rb"\r\n(?=[^ \t])", head):
        fields[f.split(b":", 1)[0].lower()] = f + b"\r\n"
    h = hashlib.sha256()
    for name in (b"received", b"from", b"to", b"subject", b"date", b"message-id"):
        h.update(fields[name])
    h.update(field + b";")
    sig = base64.b64encode(RSASSA_PKCS1_v1_5_sign(h, pk))
    if not sig.startswith(b"AuUoFEfD"):
        raise SystemExit("RFC 6376 A.2 rebuilt wrongly: b=%s..., A.2 prints AuUoFEfD..." % sig[:8].decode())
    folded = b"\r\n        ".join(sig[i:i + 52] for i in range(0, len(sig), 52))
    signed_field = field + folded + b";\r\n"
    errata = signed_field + a1
    printed = errata.replace(b"We lost the game. Are", b"We lost the game.  Are")
    # A.3, "The Email Signature Is Verified", presents it as verifying.
    c.case("rfc6376-a2-errata", c.message("rfc6376-a2-errata.eml", errata), 0, "pass(RFC6376-A.3)")
    c.case("rfc6376-a2-as-printed", c.message("rfc6376-a2-as-printed.eml", printed), 0,
           "pass(RFC6376-A.3)")
    c.write()


mail_dkim()
dkimpy()
mail_auth()
rfc()
PY

echo "peer-corpora: done; corpora in $OUT/{mail-dkim,dkimpy,mail-auth,rfc}" >&2
