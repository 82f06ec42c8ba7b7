#!/usr/bin/env bash
# CL-07: an agent evicted by a node drain is reported as interrupted and never re-run behind the owner's
# back. One agent is launched through the agentfarm API, its node is drained of that one pod (kubectl
# drain --pod-selector), and the run, its Job and the list of runs are checked; then it is launched again
# by hand, as the owner would.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-07-drain.sh [--url URL] [--answers LIST] [--help]

CL-07 node drain or eviction of an agent.
Pass: the evicted pod gets the condition DisruptionTarget and the run ends with a reason that says it was
interrupted; no second Job, pod or run appears by itself; launching the config again works; the phone
got exactly one notification for the interrupted run.

Needs: kubectl (cluster admin: it drains), curl, jq, the agentfarm app over the tailnet.
Changes: the agent's node is cordoned during the drain (uncordoned on exit, unless it was cordoned
before) and only the check's agent is evicted; one config and two runs (model haiku), stopped and
deleted on exit.

EOF
  api_help
  answers_help cl-07.push=y
  cat <<'EOF'
  --help                this text

Questions: cl-07.push (exactly one notification for the interrupted run?).
Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; API_URL=$2; shift ;;
    --answers) require_value "$@"; ANSWERS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

NODE=
CORDONED=0

# On exit: the node takes pods again (unless it did not before the check).
uncordon_node() {
  if [ "$CORDONED" = 1 ]; then
    kubectl uncordon "$NODE" >/dev/null
    CORDONED=0
  fi
}

start_check CL-07
require_kubectl
require_api

create_config "$READY_TASK"
launch_run "$CONFIG_ID"
run=$RUN_ID
if ! wait_for_run "$run" "running waiting_for_input" 900; then
  fail "the agent starts" "run $run is ${RUN_STATE:-unknown}, not running after 15 minutes"
  finish_checks
fi
pod=$(run_pod_name "$run")
NODE=$(kubectl -n "$AGENTS_NAMESPACE" get pod "$pod" -o jsonpath='{.spec.nodeName}')
info "run $run: pod $pod on $NODE"

if [ "$(kubectl get node "$NODE" -o jsonpath='{.spec.unschedulable}')" != true ]; then
  CORDONED=1
  on_exit uncordon_node
fi
echo "==> kubectl drain $NODE --pod-selector=$RUN_LABEL=$run"
kubectl drain "$NODE" --pod-selector="$RUN_LABEL=$run" --ignore-daemonsets --delete-emptydir-data \
  --timeout=5m >/dev/null 2>&1 &
drain=$!
disruption=
deadline=$((SECONDS + 120))
while [ -z "$disruption" ] && [ "$SECONDS" -lt "$deadline" ]; do
  disruption=$(kubectl -n "$AGENTS_NAMESPACE" get pod "$pod" --ignore-not-found \
    -o jsonpath='{.status.conditions[?(@.type=="DisruptionTarget")].reason}')
  sleep 1
done
if [ -n "$disruption" ]; then
  pass "the evicted pod has the condition DisruptionTarget ($disruption)"
else
  fail "the evicted pod has the condition DisruptionTarget" "not seen within 2 minutes"
fi
wait "$drain" || warn "kubectl drain did not finish cleanly (the pod may still be Terminating)"
uncordon_node

wait_for_run "$run" "$TERMINAL_STATES" 300 || true
ending=$(api GET "/api/runs/$run" | jq -r '[.state, .reason // "", .last_error // ""] | join(": ")') || ending=unknown
if printf '%s' "$ending" | grep -qi 'interrupt'; then
  pass "the run ends as interrupted ($ending)"
else
  fail "the run ends as interrupted" "it is $ending"
fi

sleep 30
jobs=$(kubectl -n "$AGENTS_NAMESPACE" get jobs -l "$RUN_LABEL=$run" -o name | wc -l | tr -d ' ')
active_pods=$(kubectl -n "$AGENTS_NAMESPACE" get pods -l "$RUN_LABEL=$run" \
  -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c -E '^(Pending|Running)$' || true)
runs=$(api GET "/api/runs?config_id=$CONFIG_ID" | jq 'length') || runs=unknown
if [ "$jobs" -le 1 ] && [ "$active_pods" = 0 ] && [ "$runs" = 1 ]; then
  pass "it is not re-run by itself"
else
  fail "it is not re-run by itself" "$jobs Job(s), $active_pods active pod(s), $runs run(s) of the config"
fi

if launch_run "$CONFIG_ID"; then
  pass "the owner can launch it again (run $RUN_ID)"
else
  fail "the owner can launch it again" "the API refused the launch"
fi

ask_about_push "one notification for the interrupted run" push \
  "Did your phone get exactly one notification for run $run?"

finish_checks
