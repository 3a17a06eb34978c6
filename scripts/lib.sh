# Shared by scripts/dev and scripts/test. Source it; do not run it.

LOCALSTRIPE_VERSION=1.15.10
AIOSMTPD_VERSION=1.4.6
# Stripe's Python SDK, for its stripe.params: the request types Stripe publishes.
STRIPE_PYTHON_VERSION=16.1.0
# The copy-paste detector (npm), pinned.
JSCPD_VERSION=4.3.0

# Background services this script started, stopped when it exits.
BACKGROUND_PIDS=""
trap 'kill $BACKGROUND_PIDS 2>/dev/null || true' EXIT

# Installs localstripe into the project's own venv (.venv) once.
ensure_localstripe() {
  if [ ! -x .venv/bin/localstripe ]; then
    echo "Installing localstripe $LOCALSTRIPE_VERSION into .venv ..." >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "localstripe==$LOCALSTRIPE_VERSION"
  fi
}

# Starts localstripe on port $1 in the background, waits until it answers, and
# stops it when the calling script exits. Sets LOCALSTRIPE_PID.
start_localstripe() {
  local port=$1 log=${2:-/dev/null}
  mkdir -p "$(dirname "$log")"
  ensure_localstripe
  .venv/bin/localstripe --port "$port" --from-scratch >"$log" 2>&1 &
  LOCALSTRIPE_PID=$!
  BACKGROUND_PIDS="$BACKGROUND_PIDS $LOCALSTRIPE_PID"
  await_service localstripe "$LOCALSTRIPE_PID" "$log" \
    curl -fs -o /dev/null -u sk_test_local: "http://127.0.0.1:$port/v1/customers"
}

# Waits until the command after $3 succeeds (the service $1 answers), for 20 s at
# most, or until the process $2 dies (its log is $3).
await_service() {
  local name=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 1 100); do
    if "$@" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name did not start; its log: $log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "$name did not answer: $*" >&2
  return 1
}

# Whether something listens on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1")
}

# Starts aiosmtpd (a real SMTP server, from PyPI, in .venv) on port $1, keeping
# every message it receives in the maildir $2 (in $2/new), until the calling
# script exits.
start_smtp() {
  local port=$1 maildir=$2 log=${3:-/dev/null}
  if [ ! -x .venv/bin/aiosmtpd ]; then
    echo "Installing aiosmtpd $AIOSMTPD_VERSION into .venv ..." >&2
    [ -x .venv/bin/pip ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
  fi
  mkdir -p "$maildir/new" "$maildir/cur" "$maildir/tmp" "$(dirname "$log")"
  .venv/bin/aiosmtpd -n -l "127.0.0.1:$port" -c aiosmtpd.handlers.Mailbox "$maildir" >"$log" 2>&1 &
  local pid=$!
  BACKGROUND_PIDS="$BACKGROUND_PIDS $pid"
  await_service aiosmtpd "$pid" "$log" port_open "$port"
}

# Installs the `stripe` package into .venv once (its request types are what
# scripts/stripe_conformance.py checks the suite's requests against).
ensure_stripe_types() {
  if ! .venv/bin/python -c "import stripe, sys; sys.exit(stripe.VERSION != '$STRIPE_PYTHON_VERSION')" 2>/dev/null; then
    echo "Installing stripe $STRIPE_PYTHON_VERSION (Python) into .venv ..." >&2
    [ -x .venv/bin/pip ] || python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "stripe==$STRIPE_PYTHON_VERSION"
  fi
}

# Checks every request the suite's Stripe stand-in recorded in $1 against
# Stripe's published request types, and that every kind the app sends is there.
check_stripe_requests() {
  .venv/bin/python scripts/stripe_conformance.py --require-all-kinds "$1"
}

# Installs jscpd into target/tools/jscpd once (npm registry).
ensure_jscpd() {
  JSCPD=target/tools/jscpd/node_modules/.bin/jscpd
  if [ ! -x "$JSCPD" ] || [ "$("$JSCPD" --version 2>/dev/null)" != "$JSCPD_VERSION" ]; then
    echo "Installing jscpd $JSCPD_VERSION into target/tools/jscpd ..." >&2
    mkdir -p target/tools/jscpd
    npm install --silent --no-audit --no-fund --prefix target/tools/jscpd "jscpd@$JSCPD_VERSION" >/dev/null
  fi
}

# Fails on any copy of 10 lines (80 tokens) or more in the Rust files under $1.
check_copies() {
  "$JSCPD" --format rust --min-lines 10 --min-tokens 80 --threshold 0 --silent "$1"
}

# Installs Debian's Chromium and its WebDriver for the browser tests, once.
ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "The browser tests need Chromium: sudo apt-get install chromium chromium-driver" >&2
    return 1
  fi
  echo "Installing chromium and chromium-driver ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
}

# Installs Debian's Prometheus (with promtool) for the monitoring tests, once.
# The package's own service is not wanted: the tests start their own.
ensure_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "The monitoring tests need Prometheus: sudo apt-get install prometheus" >&2
    return 1
  fi
  echo "Installing prometheus ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  pkill -x prometheus 2>/dev/null || true
}

# Lays the RustSec advisory database snapshot ($1, RustSec's layout; these
# machines cannot fetch it) where `cargo deny --offline` reads it: a git
# repository under target/advisory-dbs, named as cargo-deny names the clone of
# github.com/rustsec/advisory-db. Made anew when the snapshot changes.
prepare_advisory_db() {
  local snapshot=$1 dest=target/advisory-dbs/advisory-db-3157b0e258782691
  if [ ! -d "$snapshot/crates" ]; then
    echo "No RustSec advisory database at $snapshot (expected its crates/ folder)" >&2
    return 1
  fi
  local stamp
  stamp=$(cd "$snapshot" && find . -type f -printf '%P %s %T@\n' | sort | sha256sum | cut -c1-16)
  if [ -f "$dest/.snapshot" ] && [ "$(cat "$dest/.snapshot")" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  cp -R "$snapshot"/. "$dest"/
  chmod -R u+w "$dest"
  (
    cd "$dest"
    git init -q
    git add -A
    git -c user.name=stripe-sync -c user.email=ci@localhost commit -qm "RustSec snapshot"
  )
  echo "$stamp" > "$dest/.snapshot"
}

CARGO_DENY_VERSION=0.20.2

# Installs cargo-deny from crates.io once (a few minutes on two cores).
ensure_cargo_deny() {
  if cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    return 0
  fi
  echo "Installing cargo-deny $CARGO_DENY_VERSION ..." >&2
  cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION"
}

# The dependency check: advisories (the local RustSec snapshot), licenses, bans
# and sources, as deny.toml says, offline. Then proof that it can fail: the
# same check with the accepted advisory, or with MIT, taken out of deny.toml
# must refuse the tree.
check_dependencies() {
  ensure_cargo_deny
  prepare_advisory_db "${STRIPE_SYNC_ADVISORY_DB:-../shared/advisory-db}"
  cargo fetch --locked --quiet
  cargo deny --offline check >target/deny.log 2>&1 || { cat target/deny.log >&2; return 1; }
  # The summary, and how many crates come in more than one version.
  tail -n 1 target/deny.log
  echo "duplicate crates (warned, not refused): $(grep -c '^warning\[duplicate\]' target/deny.log || true)"
  mkdir -p target/deny
  sed '/RUSTSEC-2023-0071/d' deny.toml > target/deny/without-accepted-advisory.toml
  sed '/^    "MIT",$/d' deny.toml > target/deny/without-mit.toml
  # Each probe must fail for its reason, not for want of the database.
  local probe config check reason
  for probe in without-accepted-advisory:advisories:RUSTSEC-2023-0071 \
               without-mit:licenses:"license is not explicitly allowed"; do
    IFS=: read -r config check reason <<<"$probe"
    if cargo deny --offline --config "target/deny/$config.toml" check "$check" \
         >target/deny/"$config".log 2>&1 \
       || ! grep -q "$reason" target/deny/"$config".log; then
      echo "FAIL: cargo deny with deny.toml $config did not refuse the tree for '$reason' (target/deny/$config.log)" >&2
      return 1
    fi
  done
  echo "cargo deny refuses an advisory not accepted and a license not allowed (checked)"
}
