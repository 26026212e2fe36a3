#!/usr/bin/env bash
# Prints the path of a Chromium for the browser tests (the `scorer photos --html` page is loaded
# in a real headless browser: crates/scorer/tests/html_page.rs, report.rs), installing Debian's
# `chromium` package with apt-get when none is found and we are root or have password-less sudo.
#   BALLAST_CHROMIUM=$(scripts/chromium.sh)
# Set BALLAST_CHROMIUM to use a Chromium or Chrome you already have instead.
set -euo pipefail
names=(chromium chromium-browser google-chrome google-chrome-stable)

# Prints the first of $names on PATH.
find_chromium() {
  local n
  for n in "${names[@]}"; do
    if command -v "$n" >/dev/null 2>&1; then
      command -v "$n"
      return 0
    fi
  done
  return 1
}

# Checks that $1 starts (the tests fail late and obscurely otherwise), then prints it.
use() {
  if ! "$1" --version >/dev/null 2>&1; then
    echo "error: $1 --version fails; the browser tests need a working Chromium" \
      "(reinstall it, or set BALLAST_CHROMIUM to another Chromium or Chrome)" >&2
    exit 1
  fi
  echo "$1"
  exit 0
}

if [ -n "${BALLAST_CHROMIUM:-}" ]; then
  p=$(command -v "$BALLAST_CHROMIUM" 2>/dev/null) || {
    echo "error: BALLAST_CHROMIUM=$BALLAST_CHROMIUM is not an executable" >&2
    exit 1
  }
  use "$p"
fi
if p=$(find_chromium); then
  use "$p"
fi
# Root, or a password-less sudo (a CI runner's usual user).
sudo=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
fi
if { [ "$(id -u)" = 0 ] || [ ${#sudo[@]} -gt 0 ]; } && command -v apt-get >/dev/null 2>&1; then
  echo "installing Chromium for the browser tests (apt-get install chromium)..." >&2
  log=$(mktemp)
  start=$SECONDS
  if ! { "${sudo[@]}" apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends chromium; } \
    >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "error: apt-get could not install chromium (log above); install Chromium or Chrome" \
      "yourself and set BALLAST_CHROMIUM to it" >&2
    exit 1
  fi
  rm -f "$log"
  echo "installed Chromium in $((SECONDS - start)) s" >&2
  if p=$(find_chromium); then
    use "$p"
  fi
  echo "error: the chromium package installed, but none of ${names[*]} is on PATH" >&2
  exit 1
fi
cat >&2 <<MSG
error: the browser tests need Chromium (or Chrome), and none of ${names[*]} is on PATH.
  Debian:  sudo apt-get install --no-install-recommends chromium
  Ubuntu:  install Google Chrome or a chromium .deb (the chromium-browser package is a snap)
  Fedora:  sudo dnf install chromium        macOS: brew install --cask chromium
or set BALLAST_CHROMIUM to the browser's binary (scripts/test.sh installs it itself when run as
root, or with password-less sudo, on a system with apt-get).
MSG
exit 1
