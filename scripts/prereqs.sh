#!/usr/bin/env bash
# Installs the Debian packages the tests and the local cluster need, when missing (idempotent).
# Usage: prereqs.sh [postgresql] [redis-server] [nginx] [chromium] [python3-matplotlib]   (no argument: the first four)
set -euo pipefail
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(postgresql redis-server nginx chromium)
need=()
for package in "${wanted[@]}"; do
  case "$package" in
    postgresql) ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql) ;;
    redis-server) command -v redis-server >/dev/null || need+=(redis-server) ;;
    nginx) command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx) ;;
    chromium) command -v chromium >/dev/null || need+=(chromium) ;;
    python3-matplotlib) /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || need+=(python3-matplotlib) ;;
    *) echo "prereqs: unknown package '$package'" >&2; exit 2 ;;
  esac
done
if [ ${#need[@]} -gt 0 ]; then
  echo "prereqs: installing ${need[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
