#!/usr/bin/env bash
# Installs the Debian packages that the integration tests drive as real
# programs, when they are missing: sshd (collectbus record over SSH),
# Chromium (the HTML report, rendered headless), promtool (the Prometheus
# exposition) and prometheus (a real server scraping collectbus serve). Each is installed only if its program is not on the PATH.
# Needs root and apt-get; otherwise it says what is missing and returns 0, and
# the tests that need a missing program skip (or fail when CI=true).
set -euo pipefail

declare -A wanted=(
  [sshd]=openssh-server
  [chromium]=chromium
  [promtool]=prometheus
  [prometheus]=prometheus
)

missing=()
for program in "${!wanted[@]}"; do
  if ! command -v "$program" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$program" ]; then
    missing+=("${wanted[$program]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: missing ${missing[*]} (install them with apt-get as root)" >&2
  exit 0
fi
# promtool and prometheus come in one package: install it once.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || true
# --no-install-recommends keeps prometheus from pulling in its exporters.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
