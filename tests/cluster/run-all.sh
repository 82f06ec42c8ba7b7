#!/usr/bin/env bash
# Runs the cluster checks tests/cluster/cl-*.sh one after the other with the same app URL and answers, and
# prints a table of how each ended. The ten-hour soak (CL-08) and the restore drill (CL-10, which takes the
# control plane down) run only when asked for.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/run-all.sh [--url URL] [--answers LIST] [--only IDS] [--with-soak]
                                [--with-restore-drill] [--list] [--help]

Runs the cluster checks CL-01 … CL-10 (tests/cluster/README.md) in order, each with its defaults, and
prints one line per check: passed, FAILED, or could not run (a missing prerequisite). Every check prints
its own PASS, FAIL and SKIP lines and cleans up after itself. By default CL-08 (the OAuth soak: ten
hours) and CL-10 (the restore drill: the control plane goes down) are left out.

Needs what the checks need: kubectl and ./kubeconfig or $KUBECONFIG; curl, jq and the agentfarm app over
the tailnet; a terminal for the owner's questions (or --answers); an iPhone for CL-09.

  --url URL             the agentfarm app (exported as AGENTFARM_URL to every check)
  --answers LIST        answers for every check's questions, e.g. cl-01.restarted=n,cl-09.push=y
                        (exported as AGENTFARM_CHECK_ANSWERS)
  --only IDS            only these, e.g. cl-01,cl-03 or 1,3
  --with-soak           also CL-08
  --with-restore-drill  also CL-10
  --list                print the checks that would run, and run none
  --help                this text

Exit status: 0 every check passed (skips allowed), 1 a check failed, 2 a check could not run.
EOF
}

ONLY=
WITH_SOAK=0
WITH_DRILL=0
LIST=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; export AGENTFARM_URL=$2; shift ;;
    --answers) require_value "$@"; export AGENTFARM_CHECK_ANSWERS=$2; shift ;;
    --only) require_value "$@"; ONLY=$2; shift ;;
    --with-soak) WITH_SOAK=1 ;;
    --with-restore-drill) WITH_DRILL=1 ;;
    --list) LIST=1 ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

# Whether check $1 (cl-NN) is chosen.
chosen() {
  local id=$1 wanted
  if [ -n "$ONLY" ]; then
    for wanted in ${ONLY//,/ }; do
      wanted=${wanted#cl-}
      wanted=${wanted#CL-}
      if [ "${id#cl-}" = "$wanted" ] || [ "${id#cl-}" = "0$wanted" ]; then
        return 0
      fi
    done
    return 1
  fi
  case "$id" in
    cl-08) [ "$WITH_SOAK" = 1 ] ;;
    cl-10) [ "$WITH_DRILL" = 1 ] ;;
    *) return 0 ;;
  esac
}

checks=()
for script in "$CHECKS_DIR"/cl-[0-9][0-9]-*.sh; do
  name=${script##*/}
  if chosen "${name:0:5}"; then
    checks+=("$script")
  fi
done
if [ "${#checks[@]}" = 0 ]; then
  die 2 "no check chosen (--only $ONLY)"
fi
if [ "$LIST" = 1 ]; then
  for script in "${checks[@]}"; do
    echo "tests/cluster/${script##*/}"
  done
  exit 0
fi

results=()
worst=0
for script in "${checks[@]}"; do
  name=${script##*/}
  printf '\n===== %s\n' "$name"
  status=0
  bash "$script" || status=$?
  case "$status" in
    0) results+=("passed         $name") ;;
    1) results+=("FAILED         $name") ;;
    *) results+=("could not run  $name (exit $status)") ;;
  esac
  if [ "$status" = 1 ] || { [ "$status" -gt 1 ] && [ "$worst" = 0 ]; }; then
    worst=$status
  fi
done

printf '\n===== summary\n'
printf '  %s\n' "${results[@]}"
if [ "$worst" -gt 1 ]; then
  exit 2
fi
exit "$worst"
