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

for f in mod_s2s_v6mesh v6alt policy compat shell dns dns_listener dnsd; do
  [[ -f dist/mod_s2s_v6mesh/$f.lua ]] || { echo "build-rock: dist/mod_s2s_v6mesh/$f.lua missing; run npm run build" >&2; exit 1; }
done
for f in bin/v6alt-dnsd contrib/v6alt-dnsd.service; do
  [[ -f $f ]] || { echo "build-rock: $f missing" >&2; exit 1; }
done

rockspec="$work/mod_s2s_v6mesh-$version-1.rockspec"
sed -e "s|@VERSION@|$version|" -e "s|@SOURCE@|$root|" rockspecs/mod_s2s_v6mesh-scm-1.rockspec.in >"$rockspec"

# Build beside the output folder and swap it in at the end, so a concurrent
# `prosodyctl install --server=build/rocks` never sees a half-made folder.
stage="$work/rocks"
mkdir -p "$stage"
# `luarocks make` builds from the working tree and packs the installed files.
if ! (cd "$root" && luarocks --lua-version=5.4 make --tree="$work/tree" --pack-binary-rock "$rockspec") >"$work/make.log" 2>&1; then
  cat "$work/make.log" >&2
  exit 1
fi
mv "$root"/mod_s2s_v6mesh-"$version"-1.all.rock "$stage"/
cp "$rockspec" "$stage"/
luarocks-admin --lua-version=5.4 make-manifest "$stage" >/dev/null 2>&1
[[ -f $stage/manifest ]] || { echo "build-rock: luarocks-admin made no manifest" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
rm -rf "$out.old"
[[ -d $out ]] && mv "$out" "$out.old"
mv "$stage" "$out"
rm -rf "$out.old"
echo "$out/mod_s2s_v6mesh-$version-1.all.rock"
