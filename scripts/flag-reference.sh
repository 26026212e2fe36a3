#!/usr/bin/env bash
# Rewrites docs/flags.md, the flag reference the README links: every command's --help, as the
# binaries print it. The test `readme::every_flag_is_documented` fails while it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
BALLAST_WRITE_FLAG_REFERENCE=1 cargo test --locked -p ballast-e2e --test readme \
  every_flag_is_documented -- --exact >/dev/null 2>&1 || true
git diff --stat -- docs/flags.md
