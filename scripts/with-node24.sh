#!/usr/bin/env bash
# Run a command with Node 24 first on PATH: `bash scripts/with-node24.sh npm test`.
#
# Users run Node 22 and 24, and the system Node here (20) is past its end of life. Node 24
# comes from the npm registry (the node-linux-<arch> package holds the official binary in
# bin/node; npm checks the tarball's integrity), so no other download is needed. It is kept in
# .cache/node24 (ignored by git) and reused by the next run on this checkout. Used by .ci/run
# (the second test run) and `npm run bench:node24`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
NODE24="$root/.cache/node24"
case "$(uname -m)" in
  x86_64) node_arch=x64 ;;
  aarch64) node_arch=arm64 ;;
  *) echo "no Node 24 package for $(uname -m)" >&2; exit 1 ;;
esac
if ! "$NODE24/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
  rm -rf "$NODE24"
  mkdir -p "$NODE24"
  tarball="$(npm pack --silent --pack-destination "$NODE24" "node-linux-$node_arch@24" | tail -n 1)"
  tar -xzf "$NODE24/$tarball" -C "$NODE24" --strip-components=1
  rm "$NODE24/$tarball"
fi
export PATH="$NODE24/bin:$PATH"
exec "$@"
