#!/usr/bin/env bash
# Unit tests (busted, spec/) under every supported Lua interpreter.
#
#   bash scripts/test-unit.sh              # lua5.1 lua5.2 lua5.3 lua5.4 luajit
#   LUAS="lua5.4 luajit" bash scripts/test-unit.sh
#
# Prints one line per interpreter ("unit lua5.4: 123 passed, 0 failed"),
# appends "unit-lua5.4 <passed> <failed>" to $V6M_RESULTS when it is set,
# and exits non-zero if any test failed or an interpreter did not run.
# An interpreter that is missing, crashes, times out or reports no tests
# counts as one failure.  Full TAP output is kept, one file per interpreter,
# in $V6M_UNIT_LOG_DIR when set (otherwise a temporary directory, removed).
set -u

cd "$(dirname "$0")/.." || exit 2

LUAS=${LUAS:-"lua5.1 lua5.2 lua5.3 lua5.4 luajit"}
BUSTED=${BUSTED:-/usr/bin/busted}
TIMEOUT=${V6M_UNIT_TIMEOUT:-300}
if [ -n "${V6M_UNIT_LOG_DIR:-}" ]; then
  LOG_DIR=$V6M_UNIT_LOG_DIR
  mkdir -p "$LOG_DIR" || exit 2
else
  LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/v6m-unit.XXXXXX") || exit 2
  trap 'rm -rf "$LOG_DIR"' EXIT
fi

status=0
for lua in $LUAS; do
  log="$LOG_DIR/$lua.tap"
  note=""
  if ! command -v "$lua" >/dev/null 2>&1; then
    : >"$log"
    rc=127
    note=" (interpreter $lua not found)"
  elif [ ! -e "$BUSTED" ]; then
    : >"$log"
    rc=127
    note=" (busted not found at $BUSTED)"
  else
    timeout "$TIMEOUT" "$lua" "$BUSTED" -o TAP spec/ >"$log" 2>&1
    rc=$?
  fi
  passed=$(grep -aEc '^ok [0-9]+' "$log" | head -n1)
  skipped=$(grep -aEc '^ok [0-9]+.*# SKIP' "$log" | head -n1)
  failed=$(grep -aEc '^not ok [0-9]+' "$log" | head -n1)
  passed=$((passed - skipped))
  planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | tail -n1)
  if [ "$rc" = 124 ]; then
    note=" (timed out after ${TIMEOUT}s)"
  fi
  # Tests announced in the plan but never reported count as failed.
  if [ -n "$planned" ] && [ $((passed + skipped + failed)) -lt "$planned" ]; then
    failed=$((planned - passed - skipped))
    note="$note (only $((passed + skipped + failed)) of $planned reported)"
  fi
  if [ $((passed + failed)) -eq 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
    [ -n "$note" ] || note=" (no tests ran, exit $rc)"
  fi
  if [ "$rc" != 0 ] && [ "$failed" -eq 0 ]; then
    failed=1
    [ -n "$note" ] || note=" (busted exited $rc)"
  fi
  [ "$skipped" -gt 0 ] && note="$note ($skipped skipped)"
  echo "unit $lua: $passed passed, $failed failed$note"
  if [ "$failed" -ne 0 ]; then
    status=1
    # Show what failed (TAP diagnostics follow each "not ok" line).
    if grep -qa -E '^not ok [0-9]+' "$log"; then
      grep -a -A6 -E '^not ok [0-9]+' "$log" | head -n 60 | sed 's/^/    /'
    else
      tail -n 20 "$log" | sed 's/^/    /'
    fi
  fi
  if [ -n "${V6M_RESULTS:-}" ]; then
    echo "unit-$lua $passed $failed" >>"$V6M_RESULTS"
  fi
done
exit $status
