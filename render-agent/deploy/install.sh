#!/usr/bin/env bash
# Installs the render agent on a Debian or Ubuntu worker: the engine (ffmpeg, a font), a system
# user, the binary, its settings and the systemd unit; then starts it. The launch template's user
# data runs this with the environment name and the binary's URL:
#   install.sh ENV BINARY_URL [KEY=VALUE ...]
set -euo pipefail
env_name="$1"; binary_url="$2"; shift 2

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ffmpeg fonts-dejavu-core ca-certificates curl

id renderfleet >/dev/null 2>&1 || useradd --system --home-dir /var/lib/renderfleet --shell /usr/sbin/nologin renderfleet
install -d -o renderfleet -g renderfleet -m 0750 /var/lib/renderfleet /var/lib/renderfleet/work
install -d -m 0755 /etc/renderfleet

curl -fsSL --retry 5 "$binary_url" -o /usr/local/bin/render-agent.new
install -m 0755 /usr/local/bin/render-agent.new /usr/local/bin/render-agent
rm -f /usr/local/bin/render-agent.new

{
  echo "RENDERFLEET_ENV=$env_name"
  echo "RENDERFLEET_WORK_DIR=/var/lib/renderfleet/work"
  for kv in "$@"; do echo "$kv"; done
} > /etc/renderfleet/agent.env
chmod 0644 /etc/renderfleet/agent.env

install -m 0644 "$(dirname "$0")/renderfleet-agent.service" /etc/systemd/system/renderfleet-agent.service
systemctl daemon-reload
# --no-block: this runs inside cloud-init, which the unit (After=network-online.target) would
# otherwise wait on while cloud-init waits on this script.
systemctl enable --now --no-block renderfleet-agent.service
