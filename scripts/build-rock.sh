#!/usr/bin/env bash
# Builds build/rocks/mod_s2s_v6mesh-<version>-1.all.rock from dist/ and a
# luarocks manifest beside it, so both install forms work:
#   prosodyctl install build/rocks/mod_s2s_v6mesh-<version>-1.all.rock
#   prosodyctl install --server=build/rocks mod_s2s_v6mesh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=$(node -p 'require("./package.json").version')
out=build/rocks
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for f in mod_s2s_v6mesh v6alt policy compat; do
  [[ -f dist/mod_s2s_v6mesh/$f.lua ]] || { echo "build-rock: dist/mod_s2s_v6mesh/$f.lua missing; run npm run build" >&2; exit 1; }
done

rockspec="$work/mod_s2s_v6mesh-$version-1.rockspec"
sed -e "s|@VERSION@|$version|" -e "s|@SOURCE@|$root|" rockspecs/mod_s2s_v6mesh-scm-1.rockspec.in >"$rockspec"

rm -rf "$out"
mkdir -p "$out"
# `luarocks make` builds from the working tree and packs the installed files.
if ! (cd "$root" && luarocks --lua-version=5.4 make --tree="$work/tree" --pack-binary-rock "$rockspec") >"$work/make.log" 2>&1; then
  cat "$work/make.log" >&2
  exit 1
fi
mv "$root"/mod_s2s_v6mesh-"$version"-1.all.rock "$out"/
cp "$rockspec" "$out"/
luarocks-admin --lua-version=5.4 make-manifest "$out" >/dev/null 2>&1 || luarocks-admin make-manifest "$out" >/dev/null
echo "$out/mod_s2s_v6mesh-$version-1.all.rock"
