#!/usr/bin/env bash
# CL-06: agents outlive the control plane, and it catches up when it comes back. Five agents are launched
# through the agentfarm API; the control plane is scaled to zero; two agents end while it is down and
# their finished pods are deleted by hand (the archive finalizer must hold them); then it is scaled back
# and must record both endings with their logs, release the pods, and adopt the three still running.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-06-restart.sh [--url URL] [--answers LIST] [--help]

CL-06 control-plane restart and finalizers.
Pass: agents' pods carry the archive finalizer; with the control plane scaled to zero, three agents keep
running and two end, and `kubectl delete` leaves those two pods Terminating; once it is back, both
endings are recorded with their log, their pods go, the three others are still active and take a
follow-up message, and the phone got exactly one notification for each ending.

Needs: kubectl, curl, jq, the agentfarm app over the tailnet; AGENTFARM_IDLE_TIMEOUT of at least 180
seconds (default 300: an agent that answered waits that long for a follow-up, then ends). About
AGENTFARM_MAX_RUNNING 5 agents at once (queued ones start later and stretch the timing).
Changes: five runs of a new config (model haiku), stopped and deleted on exit. The control plane is
DOWN for a few minutes (Deployment agentfarm-control-plane scaled to 0; scaled back on exit, whatever
happens).

EOF
  api_help
  answers_help cl-06.push=y
  cat <<'EOF'
  --help                this text

Questions: cl-06.push (exactly one notification for each agent that ended while it was down?).
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

REPLICAS=1
SCALED_DOWN=0

scale_control_plane() {
  kubectl -n "$SYSTEM_NAMESPACE" scale "deploy/$CONTROL_PLANE" --replicas="$1" >/dev/null
}

# On exit: the control plane runs again, whatever happened.
restore_control_plane() {
  if [ "$SCALED_DOWN" = 1 ]; then
    info "scaling $CONTROL_PLANE back to $REPLICAS"
    scale_control_plane "$REPLICAS"
    kubectl -n "$SYSTEM_NAMESPACE" rollout status "deploy/$CONTROL_PLANE" --timeout=5m >/dev/null
    SCALED_DOWN=0
  fi
}

# Whether pod $1's agent container has terminated.
agent_terminated() {
  [ -n "$(kubectl -n "$AGENTS_NAMESPACE" get pod "$1" --ignore-not-found \
    -o jsonpath="{.status.containerStatuses[?(@.name==\"$AGENT_CONTAINER\")].state.terminated.reason}")" ]
}

start_check CL-06
require_kubectl
require_api
idle_timeout=$(kubectl -n "$SYSTEM_NAMESPACE" get configmap "$SETTINGS_CONFIGMAP" \
  -o jsonpath='{.data.AGENTFARM_IDLE_TIMEOUT}')
idle_timeout=${idle_timeout:-300}
if [ "$idle_timeout" -lt 180 ]; then
  skip "control-plane restart" "AGENTFARM_IDLE_TIMEOUT is $idle_timeout: agents end too soon for this timing (needs 180 or more)"
  finish_checks
fi
REPLICAS=$(kubectl -n "$SYSTEM_NAMESPACE" get "deploy/$CONTROL_PLANE" -o jsonpath='{.spec.replicas}')
on_exit restore_control_plane

create_config "$READY_TASK"
# The two that will end while the control plane is down: they answer first, so their idle timeout ends
# first.
enders=()
for _ in 1 2; do
  launch_run "$CONFIG_ID"
  enders+=("$RUN_ID")
done
for run in "${enders[@]}"; do
  expect_waiting "$run" "agents start"
done
answered_at=$SECONDS
info "ending soon: ${enders[*]} (idle timeout ${idle_timeout}s)"

ender_pods=()
for run in "${enders[@]}"; do
  ender_pods+=("$(run_pod_name "$run")")
done
finalizers=$(kubectl -n "$AGENTS_NAMESPACE" get pod "${ender_pods[0]}" -o jsonpath='{.metadata.finalizers}')
case "$finalizers" in
  *"$ARCHIVE_FINALIZER"*) pass "agents' pods carry $ARCHIVE_FINALIZER (the Job template's finalizers reach the pod)" ;;
  *) fail "agents' pods carry $ARCHIVE_FINALIZER" "pod ${ender_pods[0]} has finalizers [${finalizers}]" ;;
esac

# The three that stay: launched a third of the idle timeout later, so they outlive the restart.
sleep $((idle_timeout / 3))
stayers=()
for _ in 1 2 3; do
  launch_run "$CONFIG_ID"
  stayers+=("$RUN_ID")
done
for run in "${stayers[@]}"; do
  if ! wait_for_run "$run" "running waiting_for_input" 600; then
    fail "agents start" "run $run is ${RUN_STATE:-unknown}, not running after 10 minutes"
    finish_checks
  fi
done
info "staying: ${stayers[*]}"

echo "==> the control plane goes down"
SCALED_DOWN=1
scale_control_plane 0
kubectl -n "$SYSTEM_NAMESPACE" wait --for=delete pod -l "$CONTROL_PLANE_SELECTOR" --timeout=3m >/dev/null 2>&1 || true

deadline=$((answered_at + idle_timeout + 240))
ended=0
while [ "$SECONDS" -lt "$deadline" ]; do
  ended=0
  for pod in "${ender_pods[@]}"; do
    if agent_terminated "$pod"; then
      ended=$((ended + 1))
    fi
  done
  if [ "$ended" = 2 ]; then
    break
  fi
  sleep 5
done
if [ "$ended" = 2 ]; then
  pass "two agents end while the control plane is down"
else
  fail "two agents end while the control plane is down" "$ended of 2 ended within the idle timeout"
fi

running=0
for run in "${stayers[@]}"; do
  if [ "$(kubectl -n "$AGENTS_NAMESPACE" get pods -l "$RUN_LABEL=$run" -o jsonpath='{.items[0].status.phase}')" = Running ]; then
    running=$((running + 1))
  fi
done
if [ "$running" = 3 ]; then
  pass "three agents keep running without the control plane"
else
  fail "three agents keep running without the control plane" "$running of 3 pods are Running"
fi

kubectl -n "$AGENTS_NAMESPACE" delete pod "${ender_pods[@]}" --wait=false >/dev/null
sleep 10
held=0
for pod in "${ender_pods[@]}"; do
  if [ -n "$(kubectl -n "$AGENTS_NAMESPACE" get pod "$pod" --ignore-not-found -o jsonpath='{.metadata.deletionTimestamp}')" ]; then
    held=$((held + 1))
  fi
done
if [ "$held" = 2 ]; then
  pass "deleted finished pods stay Terminating until their logs are archived"
else
  fail "deleted finished pods stay Terminating until their logs are archived" "$((2 - held)) of 2 are gone already"
fi

echo "==> the control plane comes back"
restore_control_plane
if ! wait_for_app 180; then
  fail "the control plane comes back" "$API_URL/readyz does not answer 3 minutes after the rollout"
  finish_checks
fi

for run in "${enders[@]}"; do
  wait_for_run "$run" "$TERMINAL_STATES" 180 || true
  lines=$(api GET "/api/runs/$run/logs?after_seq=0&limit=5000" | jq '.lines | length') || lines=0
  case " $TERMINAL_STATES " in
    *" $RUN_STATE "*)
      if [ "$lines" -gt 0 ]; then
        pass "run $run's ending is recorded ($RUN_STATE) with its log ($lines lines)"
      else
        fail "run $run's ending is recorded with its log" "$RUN_STATE, but no log lines"
      fi
      ;;
    *) fail "run $run's ending is recorded" "it is still ${RUN_STATE:-unknown} 3 minutes after the restart" ;;
  esac
done

deadline=$((SECONDS + 180))
left=2
while [ "$SECONDS" -lt "$deadline" ]; do
  left=0
  for pod in "${ender_pods[@]}"; do
    if [ -n "$(kubectl -n "$AGENTS_NAMESPACE" get pod "$pod" --ignore-not-found -o name)" ]; then
      left=$((left + 1))
    fi
  done
  if [ "$left" = 0 ]; then
    break
  fi
  sleep 5
done
if [ "$left" = 0 ]; then
  pass "their pods go once the logs are archived"
else
  fail "their pods go once the logs are archived" "$left of 2 are still there 3 minutes after the restart"
fi

for run in "${stayers[@]}"; do
  state=$(run_field "$run" .state) || state=unknown
  case "$state" in
    running | waiting_for_input)
      pass "run $run is adopted ($state)"
      message=$(jq -n '{text: "Reply with the single word again. Do not use any tools."}')
      if api POST "/api/runs/$run/messages" "$message" >/dev/null; then
        pass "adopted run $run takes a follow-up message"
      else
        fail "adopted run $run takes a follow-up message" "the API refused it"
      fi
      ;;
    *) fail "run $run is adopted" "it is $state" ;;
  esac
done

ask_about_push "one notification per ending" push \
  "Did your phone get exactly one notification for each of runs ${enders[*]} (none twice, none missing)?"

finish_checks
