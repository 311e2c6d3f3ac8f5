#!/usr/bin/env bash
# The whole test suite: static checks, unit specs on every Lua, and the
# integration suites against real Prosody servers. Every suite appends
# "<name> <passed> <failed>" to $V6M_RESULTS; the closing line sums them.
#
# Integration suites run V6M_JOBS at a time (default 3; they mostly wait on
# the network and on timeouts, not on the 2 cores): each
# builds its own namespaces, servers and temp dir under its own run id, so
# they do not see each other. A suite's output is printed whole when it ends.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$SECONDS
jobs_max=${V6M_JOBS:-3}
work=$(mktemp -d /tmp/v6m-test-all.XXXXXX)
V6M_RESULTS=$work/results
: >"$V6M_RESULTS"
export V6M_RESULTS
trap 'rm -rf "$work"' EXIT

check() { # check NAME COMMAND... : a one-test suite
  local name=$1; shift
  if "$@" >"$work/check.out" 2>&1; then
    echo "ok - $name"; echo "$name 1 0" >>"$V6M_RESULTS"
  else
    echo "not ok - $name"; sed 's/^/    /' "$work/check.out" | tail -20
    echo "$name 0 1" >>"$V6M_RESULTS"
  fi
}

# suite_run ID NAME SCRIPT ARGS... : runs a suite with its own results file
# and log; prints the log and merges the results when it ends. A suite that
# died without reporting anything counts as one failure, as does one that
# exited non-zero although all its checks passed.
suite_run() {
  local id=$1 name=$2 rc=0 t0=$SECONDS
  shift 2
  V6M_RESULTS=$work/$id.results "$@" >"$work/$id.log" 2>&1 || rc=$?
  {
    echo "== $name ($((SECONDS - t0)) s)"
    cat "$work/$id.log"
    if [[ ! -s $work/$id.results ]]; then
      echo "not ok - $name reported no results (exit $rc)"
      echo "$name 0 1" >>"$work/$id.results"
    elif ((rc != 0)) && ! awk '$3 > 0 {f = 1} END {exit !f}' "$work/$id.results"; then
      echo "not ok - $name exited $rc although its checks passed"
      echo "$name 0 1" >>"$work/$id.results"
    fi
  } >"$work/$id.report"
}

running=0
next_id=0
suite() { # suite NAME SCRIPT ARGS... : queued, V6M_JOBS at a time
  if ((running >= jobs_max)); then
    wait -n
    running=$((running - 1))
  fi
  next_id=$((next_id + 1))
  suite_run "s$next_id" "$@" &
  running=$((running + 1))
}

suites_finish() { # wait for every queued suite; print reports in queue order
  wait
  local i
  for ((i = 1; i <= next_id; i++)); do
    cat "$work/s$i.report"
    cat "$work/s$i.results" >>"$V6M_RESULTS"
  done
}

echo "== static checks"
check "dist/ is up to date with src/" bash scripts/check-dist.sh
check "luacheck dist/ is clean" luacheck --no-color -q dist/
check "the rock builds" bash scripts/build-rock.sh

integration=test/integration
# Which Prosody builds run what (the README's compatibility table says the same):
#   13, 0.12 (Debian)        shell; smoke in all four pairings; every scenario
#                            suite as 13-13 and 0.12-0.12; metrics, fingerprint
#                            and yggdrasil on each
#   0.12-lua5.1, 0.12-luajit shell; smoke with 13 both ways; the scenario suites
#                            of scenarios_on[build] paired with 13 (the build as
#                            server A): the 0.12 -> 13 pairings
#   trunk                    shell; smoke with 13 both ways; multihome paired with 13
# The 13-13 run of each scenario suite has the module's DNS listener on in
# every server (V6M_DNS_LISTEN=1): the suites pass with it as without it.
built="0.12-lua5.1 0.12-luajit trunk"
# The scenario suites that pair each source build (as server A) with 13. The
# impostor and the peers of impersonation are 13 or module-free there, so it
# runs on 13 and 0.12 only; LuaJIT takes the suites where the module's own
# code does most (routing, trust, components, binding).
declare -A scenarios_on=(
  [0.12-lua5.1]="federation ranges ties whole-server reload multihome"
  [0.12-luajit]="federation whole-server multihome"
  [trunk]="multihome"
)
# Longest first, so that the last suites to start are short ones.
suite unit bash scripts/test-unit.sh
suite "names fuzz (50,000 names on lua5.1, lua5.4, luajit)" bash scripts/test-names-fuzz.sh
for f in $integration/suites/*.sh; do
  [[ -e $f ]] || continue
  name=$(basename "$f" .sh)
  pairs=("13 13" "0.12 0.12")
  for version in $built; do
    [[ " ${scenarios_on[$version]} " == *" $name "* ]] && pairs+=("$version 13")
  done
  for pair in "${pairs[@]}"; do
    if [[ $pair == "13 13" ]]; then
      # shellcheck disable=SC2086 # two words on purpose
      suite "$name ($pair, DNS listener on)" env V6M_DNS_LISTEN=1 bash "$f" $pair
    else
      # shellcheck disable=SC2086
      suite "$name ($pair)" bash "$f" $pair
    fi
  done
done
# The .v6.alt resolver (SPEC 6): v6alt-dnsd, the in-Prosody listener on 13 and
# 0.12 (the same checks), and real clients and servers that use it.
suite "dns resolver (v6alt-dnsd)" bash $integration/dns-resolver.sh --target dnsd
for version in 13 0.12; do
  suite "dns resolver (in Prosody $version)" bash $integration/dns-resolver.sh --target prosody --prosody "$version"
done
suite "resolver peers" bash $integration/resolver-peers.sh
suite "v6alt-dnsd installed without Prosody" bash $integration/dnsd-install.sh
# Issue 15: a real Yggdrasil overlay, and certificates pinned with the
# third-party mod_s2s_auth_fingerprint (../shared/third-party).
for pair in "13 13" "0.12 0.12"; do
  # shellcheck disable=SC2086
  suite "yggdrasil ($pair)" bash $integration/yggdrasil.sh $pair
  # shellcheck disable=SC2086
  suite "fingerprint pinning ($pair)" bash $integration/fingerprint.sh $pair
done
# What operators see: the module's metrics (mod_http_openmetrics) and v6alt status.
for version in 13 0.12; do
  suite "metrics and status (Prosody $version)" bash $integration/metrics.sh "$version"
done
# Faults (issue 11): B killed / restarted mid-burst; every chat delivered or bounced.
suite "faults (short)" bash bench/faults.sh --short
for version in 13 0.12 $built; do
  suite "shell ($version)" bash $integration/shell.sh "$version"
done
suite "harness self-test" bash $integration/harness-selftest.sh 13 0.12
for pair in "13 13" "13 0.12" "0.12 13" "0.12 0.12"; do
  # shellcheck disable=SC2086
  suite "federation smoke ($pair)" bash $integration/federation-smoke.sh $pair
done
for version in $built; do
  for pair in "$version 13" "13 $version"; do
    # shellcheck disable=SC2086
    suite "federation smoke ($pair)" bash $integration/federation-smoke.sh $pair
  done
done
suites_finish

echo "npm test took $((SECONDS - started)) s ($(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s) with $jobs_max suites at a time"
awk '{p += $2; f += $3} END {printf "%d passed, %d failed\n", p, f; exit (f > 0 || p == 0)}' "$V6M_RESULTS"
