#!/usr/bin/env bash
# Install Debian's Chromium and ChromeDriver for the report's browser test, when missing and
# when this user may install system packages (root, or sudo without a password). Otherwise
# say so: the browser test then skips, unless SWALAB_REQUIRE_BROWSER=1 (CI) makes it fail.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "scripts/browser.sh: chromium/chromedriver missing and no root: the browser test skips" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "scripts/browser.sh: no apt-get; install chromium and chromedriver yourself" >&2
  exit 0
fi
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  chromium chromium-driver >/dev/null
