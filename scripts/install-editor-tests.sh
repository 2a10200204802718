#!/usr/bin/env bash
# Installs what `npm run test:editor` needs, offline from GitHub: Debian's chromium (driven by playwright-core) and
# ripgrep, the build tools of code-server's native modules, and code-server itself into .cache/code-server (ignored).
# Safe to run again: each part is skipped when already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

CODE_SERVER_VERSION=4.100.3   # VS Code 1.100.3, the newest that runs on Node 20; engines.vscode is ^1.100.0
# code-server 4.100.3 pins @vscode/ripgrep 1.15.11, whose postinstall downloads this ripgrep release from GitHub
RIPGREP_PACKAGE=1.15.11
RIPGREP_TAG=v13.0.0-10
DIR=.cache/code-server

packages=(chromium ripgrep libkrb5-dev pkg-config g++ make python3)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-editor-tests: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

installed=$(node -p "try { require('./$DIR/node_modules/code-server/package.json').version } catch { '' }")
if [ "$installed" = "$CODE_SERVER_VERSION" ] && [ -x "$DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]; then
  echo "install-editor-tests: code-server $CODE_SERVER_VERSION already in $DIR"
  exit 0
fi

rm -rf "$DIR"
mkdir -p "$DIR"
echo '{ "name": "pinpoint-code-server", "private": true }' > "$DIR/package.json"
# scripts first off: @vscode/ripgrep's would download from GitHub before its cache is seeded
(cd "$DIR" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION")

pinned=$(node -p "require('./$DIR/node_modules/code-server/lib/vscode/npm-shrinkwrap.json').packages['node_modules/@vscode/ripgrep'].version")
if [ "$pinned" != "$RIPGREP_PACKAGE" ]; then
  echo "install-editor-tests: code-server now pins @vscode/ripgrep $pinned, not $RIPGREP_PACKAGE; update RIPGREP_PACKAGE and RIPGREP_TAG" >&2
  exit 1
fi
cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-$RIPGREP_PACKAGE"
staging=$(mktemp -d)
mkdir -p "$cache"
cp "$(command -v rg)" "$staging/rg"
tar czf "$cache/ripgrep-$RIPGREP_TAG-x86_64-unknown-linux-musl.tar.gz" -C "$staging" rg
rm -rf "$staging"

# code-server's postinstall refuses to run as root without unsafe-perm; node-pty's runs `npx node-gyp`
(cd "$DIR" && npm_config_unsafe_perm=true npm_config_yes=true npm rebuild --loglevel=error code-server argon2)
test -x "$DIR/node_modules/code-server/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
echo "install-editor-tests: code-server $CODE_SERVER_VERSION installed in $DIR"
