# Shared by the scripts in this folder: say what is happening, install what is missing, build.
# Source it; do not run it.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Pinned tool versions.
MOTO_VERSION="5.2.5"

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/debug"
export RENDERFLEET_BIN_DIR="$BIN_DIR"

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

# Installs Debian packages that are missing (the command names are checked first).
ensure_debs() {
  local missing=()
  local pair cmd pkg
  for pair in "$@"; do
    cmd="${pair%%:*}"; pkg="${pair##*:}"
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null; then
    as_root apt-get update -qq </dev/null >/dev/null
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  fi
}

ensure_ffmpeg() {
  ensure_debs ffmpeg:ffmpeg ffprobe:ffmpeg
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || {
    say "installing fonts-dejavu-core with apt-get"
    as_root apt-get install -y -qq fonts-dejavu-core </dev/null >/dev/null
  }
}

# The emulator, in the project's own virtualenv.
ensure_moto() {
  if [ -x .venv/bin/moto_server ] && .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    return 0
  fi
  say "installing moto[server]==$MOTO_VERSION into .venv"
  [ -d .venv ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" </dev/null
}

# The binaries, and the README's paths to them: with CARGO_TARGET_DIR elsewhere, target/debug/ in
# the repository gets links to them, so `target/debug/renderctl` works as written.
build_bins() {
  say "building the workspace (a first build of the AWS SDK takes 10 to 15 minutes)"
  cargo build --workspace --bins --quiet
  link_bins
}

link_bins() {
  local b
  [ "$(realpath -m "$BIN_DIR")" = "$(realpath -m "$ROOT/target/debug")" ] && return 0
  mkdir -p "$ROOT/target/debug"
  for b in renderctl job-server scaler render-agent; do
    [ -x "$BIN_DIR/$b" ] && ln -sfn "$BIN_DIR/$b" "$ROOT/target/debug/$b"
  done
  return 0
}
