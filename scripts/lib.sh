# Shared by scripts/dev and scripts/test. Source it; do not run it.

LOCALSTRIPE_VERSION=1.15.10

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
  trap 'kill $LOCALSTRIPE_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null -u sk_test_local: "http://127.0.0.1:$port/v1/customers"; then
      return 0
    fi
    if ! kill -0 "$LOCALSTRIPE_PID" 2>/dev/null; then
      echo "localstripe did not start; its log: $log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "localstripe did not answer on port $port" >&2
  return 1
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
