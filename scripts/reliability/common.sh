# Shared by scripts/chaos, scripts/load and scripts/fuzz: the Python tools, the binaries, and a
# private local stack in a temporary state directory that is always stopped, by pid, on exit.
# Source it after scripts/lib.sh; do not run it.

# Pinned versions of the Python tools (in their own virtualenv: moto's pins differ).
LOCUST_VERSION="2.47.0"
SCHEMATHESIS_VERSION="4.32.5"
BOTO3_VERSION="1.44.5"
LOAD_VENV="$ROOT/.venv-load"
PY="$LOAD_VENV/bin/python"

ensure_load_tools() {
  if [ -x "$PY" ] && "$PY" - "$LOCUST_VERSION" "$SCHEMATHESIS_VERSION" "$BOTO3_VERSION" <<'PYEOF' 2>/dev/null; then
import sys
from importlib.metadata import version
want = dict(zip(["locust", "schemathesis", "boto3"], sys.argv[1:]))
sys.exit(0 if all(version(k) == v for k, v in want.items()) else 1)
PYEOF
    return 0
  fi
  say "installing locust==$LOCUST_VERSION, schemathesis==$SCHEMATHESIS_VERSION and boto3==$BOTO3_VERSION into .venv-load"
  [ -d "$LOAD_VENV" ] || python3 -m venv "$LOAD_VENV"
  "$LOAD_VENV/bin/pip" install -q --disable-pip-version-check \
    "locust==$LOCUST_VERSION" "schemathesis==$SCHEMATHESIS_VERSION" "boto3==$BOTO3_VERSION" </dev/null
}

# Builds the binaries only when one is missing (scripts/test builds them first).
ensure_bins() {
  local b
  for b in renderctl job-server scaler render-agent; do
    [ -x "$BIN_DIR/$b" ] || { build_bins; return 0; }
  done
}

# A private state directory for this run's stack, removed on success, kept (and named) on failure.
# Every process the run starts besides the stack itself is recorded in $STATE/owned.pids as
# "pid program"; on exit `renderctl dev down` stops the stack by the pids it recorded, then those
# are stopped (after checking each pid still runs that program).
new_state_dir() {
  STATE="$(mktemp -d "${TMPDIR:-/tmp}/renderfleet-$1.XXXXXX")"
  export STATE
  trap stop_everything EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

stop_owned() {
  local f="$STATE/owned.pids" pid prog i
  [ -f "$f" ] || return 0
  while read -r pid prog; do
    [ -n "$pid" ] || continue
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$prog"; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 100); do
        [ -r "/proc/$pid/cmdline" ] && [ -n "$(tr -d '\0' <"/proc/$pid/cmdline" 2>/dev/null)" ] || break
        sleep 0.1
      done
      if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$prog"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  done <"$f"
}

stop_everything() {
  local rc=$?
  trap - EXIT
  [ -n "${STATE:-}" ] && [ -d "$STATE" ] || exit "$rc"
  # The stack first: its agents drain through the fault proxy, which this run started itself.
  "$BIN_DIR/renderctl" dev down --state-dir "$STATE" >/dev/null 2>&1 || true
  stop_owned
  if [ "$rc" -eq 0 ] && [ -z "${KEEP_STATE:-}" ]; then
    rm -rf "$STATE"
  else
    printf 'state and logs kept in %s\n' "$STATE" >&2
  fi
  exit "$rc"
}
