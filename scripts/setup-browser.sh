#!/usr/bin/env bash
# Debian's chromium for the report's browser test (tests/report_browser.rs), idempotently:
# nothing is done when /usr/bin/chromium runs already. Only the Debian archive is used.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
  exit 0
fi
echo "setup: installing Debian package chromium (headless browser for the report test)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
# Other set-up scripts may hold the dpkg lock: wait for it instead of failing.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
  --no-install-recommends chromium fonts-dejavu-core >/dev/null
"$CHROMIUM" --version
