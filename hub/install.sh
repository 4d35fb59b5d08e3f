#!/usr/bin/env bash
# Install the course's class server (JupyterHub) for every account of this machine: `make hub` runs it, as root
# (through sudo when the Makefile is run by an ordinary user). What it installs, all under the prefix:
#   venv/     the shared course environment (Debian's Python, requirements.lock, torch, the helper package as a copy,
#             JupyterHub): every user's JupyterLab and kernels, and the instructor's grading, run from it
#   proxy/    configurable-http-proxy (npm ci from hub/proxy's lock; Node.js from Debian when it is missing)
#   config/   the per-role Jupyter configuration (hub/config: what students and instructors see)
# and nbgrader's exchange folder, mode 1777: everyone may write there, nobody may rename or delete what another
# account made (the sticky bit; nbgrader #1225). Also makes the Unix groups `instructors` and `students`.
# Settings (the Makefile passes its own): ATTENTION_STEPS_HUB_PREFIX (default /opt/attention-steps),
# ATTENTION_STEPS_EXCHANGE (default /srv/nbgrader/exchange), HUB_PYTHON (default Debian's /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${ATTENTION_STEPS_HUB_PREFIX:-/opt/attention-steps}
exchange=${ATTENTION_STEPS_EXCHANGE:-/srv/nbgrader/exchange}
python=${HUB_PYTHON:-/usr/bin/python3}
if [ "$(id -u)" != 0 ]; then
  echo "hub/install.sh installs for every account and starts servers as them: run it as root (sudo make hub)" >&2
  exit 1
fi
umask 022
apt_install() {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# 1. Node.js and the proxy. configurable-http-proxy 5 needs Node 20; Debian 12's Node is 18, which gets 4.6.3.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Debian's nodejs and npm (JupyterHub's proxy runs on Node.js)"
  apt_install nodejs npm
fi
mkdir -p "$prefix/proxy"
if [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
  cp hub/proxy/package.json hub/proxy/package-lock.json "$prefix/proxy/"
  (cd "$prefix/proxy" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
else
  (cd "$prefix/proxy" && npm install --no-save --no-audit --no-fund --loglevel=error configurable-http-proxy@4.6.3)
fi

# 2. The shared course environment, from an interpreter every account can run (not one under /root).
if [ ! -x "$python" ]; then
  echo "installing Debian's python3 (the class server's interpreter must be one every account can run)"
  apt_install python3 python3-venv
fi
if ! runuser -u nobody -- "$python" -c 'import sys' 2>/dev/null; then
  echo "$python cannot be run by other accounts (it lives where they cannot read): set HUB_PYTHON" >&2
  exit 1
fi
setup/make_venv.sh "$python" "$prefix/venv" --no-editable
# JupyterLab's defaults for every user of the server: no news or update checks from each browser
mkdir -p "$prefix/venv/share/jupyter/lab/settings"
cp hub/lab_overrides.json "$prefix/venv/share/jupyter/lab/settings/overrides.json"

# 3. What each role sees, nbgrader's exchange, the groups.
rm -rf "$prefix/config.new" && cp -r hub/config "$prefix/config.new" && rm -rf "$prefix/config" \
  && mv "$prefix/config.new" "$prefix/config"
chmod -R a+rX "$prefix/venv" "$prefix/proxy" "$prefix/config"
chmod a+rx "$prefix"
mkdir -p "$exchange"
chmod 1777 "$exchange"
for group in instructors students; do
  getent group "$group" >/dev/null || groupadd "$group"
done
# New accounts get homes only they can read (Debian's default is 755: every student could read every other's work)
if ! grep -qE '^HOME_MODE[[:space:]]+0?700' /etc/login.defs 2>/dev/null; then
  sed -i -E '/^#?HOME_MODE/d' /etc/login.defs && echo "HOME_MODE 0700" >> /etc/login.defs
  echo "new accounts' homes: mode 700 (/etc/login.defs HOME_MODE); existing ones: chmod 700 /home/*"
fi
echo "class server installed under $prefix (exchange: $exchange)"
