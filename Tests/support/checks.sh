# shellcheck shell=bash
# Sourced by the shell check scripts (Tests/install, Tests/deb): one counted
# "TAG: PASS name" or "TAG: FAIL name" line per check, TAG being $check_tag;
# each script ends with "TAG: N passed, M failed", the line .ci/run counts.
passed=0
failed=0
check() { # check NAME COMMAND...: runs COMMAND quietly; its exit status is the verdict
  local name=$1
  shift
  if "$@" >/dev/null 2>&1; then
    passed=$((passed + 1))
    echo "$check_tag: PASS $name"
  else
    failed=$((failed + 1))
    echo "$check_tag: FAIL $name"
  fi
}
