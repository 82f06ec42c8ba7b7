#!/usr/bin/env bash
# CL-05: one agent exhausting its sandbox harms nobody else, and the owner is told precisely why it ended.
# A fork bomb and a CPU spin run in pods like agents on one node while a neighbour measures its own pace;
# then three agents launched through the agentfarm API overrun memory, fill /tmp and outlive their
# timeout, and the run each ends in must name the reason (OOMKilled, Evicted, timed out).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-05-exhaustion.sh [--url URL] [--node NAME] [--runtime-class NAME] [--pods-only]
                                         [--help]

CL-05 resource exhaustion in an agent sandbox.
Pass: the node stays Ready during a fork bomb and a CPU spin next to a neighbour pod, whose slowest
seconds (its p95) keep at least 80 % of their pace; agents that overrun their memory, fill /tmp past its
2 Gi and outlive a one-minute timeout end as failed with the reasons OOMKilled, evicted and timed out.
It prints the kubelet's podPidsLimit, and whether the sandbox's writes were counted (an eviction
happened) is part of the result.

Needs: kubectl (cluster admin: it reads the kubelet's config and execs into agents), and for the agents
curl, jq and the agentfarm app over the tailnet.
Changes: for about two minutes, pods in agentfarm-agents labelled agentfarm.dev/cluster-check=cl-05
load one agent node (other agents there slow down); three configs and runs in agentfarm (model haiku),
deleted on exit.

EOF
  api_help
  cat <<'EOF'
  --node NAME           the agent node to load (default: the first agent node)
  --runtime-class NAME  gvisor (default), or kata-clh / kata-qemu (SKIP without a KVM node)
  --pods-only           only the pods: no agents, no agentfarm app needed
  --help                this text

Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

NODE=
RUNTIME_CLASS=$DEFAULT_RUNTIME_CLASS
PODS_ONLY=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; API_URL=$2; shift ;;
    --node) require_value "$@"; NODE=$2; shift ;;
    --runtime-class) require_value "$@"; RUNTIME_CLASS=$2; shift ;;
    --pods-only) PODS_ONLY=1 ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

# The neighbour's timeline, in seconds from its start: it measures its pace for PACE_SECONDS; the
# stressors start at STRESS_AFTER. Its baseline is the seconds before BASELINE_END, its pace under stress
# those from STRESSED_FROM on (both clear of the pods' start-up skew).
PACE_SECONDS=80
STRESS_AFTER=30
BASELINE_END=26
STRESSED_FROM=42

# The neighbour: forks (one `date` a loop) as fast as it can and prints "PACE second count" each second.
# shellcheck disable=SC2016 # expanded by the pod's shell
NEIGHBOUR_SCRIPT='
start=$(date +%s)
last=$start
n=0
while :; do
  now=$(date +%s)
  if [ "$now" != "$last" ]; then
    echo "PACE $((last - start)) $n"
    n=0
    last=$now
  fi
  if [ $((now - start)) -ge "$1" ]; then break; fi
  n=$((n + 1))
done
echo DONE
'
# shellcheck disable=SC2016 # expanded by the pod's shell
FORK_BOMB_SCRIPT='sleep "$1"; bomb() { bomb | bomb & }; bomb; sleep 3600'
# shellcheck disable=SC2016 # expanded by the pod's shell
CPU_SPIN_SCRIPT='sleep "$1"; for i in 1 2 3 4 5 6 7 8; do (while :; do :; done) & done; sleep 3600'

# The p5 of the neighbour's per-second counts (its slowest seconds) between seconds $1 and $2 of its log
# on stdin.
slow_pace() {
  awk -v from="$1" -v to="$2" '$1 == "PACE" && $2 >= from && $2 < to { print $3 }' | sort -n |
    awk '{ counts[NR] = $1 } END { index_ = int(NR * 0.05); if (index_ < 1) index_ = 1; print (NR ? counts[index_] : 0) }'
}

# Part one: pods only.
load_a_node() {
  local pids_limit not_ready=0 deadline log baseline stressed
  pids_limit=$(kubectl get --raw "/api/v1/nodes/$NODE/proxy/configz" 2>/dev/null |
    grep -o '"podPidsLimit":-\{0,1\}[0-9]*' | cut -d: -f2) || true
  info "kubelet podPidsLimit on $NODE: ${pids_limit:-not set (unlimited)}"

  POD_NODE=$NODE POD_RUNTIME_CLASS=$RUNTIME_CLASS POD_CPU=500m \
    start_pod agentfarm-cl-05-neighbour "$BUSYBOX_IMAGE" "$NEIGHBOUR_SCRIPT" "$PACE_SECONDS"
  POD_NODE=$NODE POD_RUNTIME_CLASS=$RUNTIME_CLASS POD_CPU=1 POD_MEMORY=256Mi \
    start_pod agentfarm-cl-05-fork-bomb "$BUSYBOX_IMAGE" "$FORK_BOMB_SCRIPT" "$STRESS_AFTER"
  POD_NODE=$NODE POD_RUNTIME_CLASS=$RUNTIME_CLASS POD_CPU=2 \
    start_pod agentfarm-cl-05-cpu-spin "$BUSYBOX_IMAGE" "$CPU_SPIN_SCRIPT" "$STRESS_AFTER"
  info "neighbour, fork bomb and CPU spin started on $NODE; the load begins ${STRESS_AFTER}s after start"

  deadline=$((SECONDS + PACE_SECONDS + 120))
  while [ "$SECONDS" -lt "$deadline" ]; do
    node_ready "$NODE" || not_ready=$((not_ready + 1))
    case "$(pod_phase agentfarm-cl-05-neighbour)" in
      Succeeded | Failed) break ;;
    esac
    sleep 5
  done
  log=$(kubectl -n "$AGENTS_NAMESPACE" logs agentfarm-cl-05-neighbour 2>&1) || true
  info "fork bomb pod: $(pod_phase agentfarm-cl-05-fork-bomb); CPU spin pod: $(pod_phase agentfarm-cl-05-cpu-spin)"
  kubectl -n "$AGENTS_NAMESPACE" delete pod agentfarm-cl-05-fork-bomb agentfarm-cl-05-cpu-spin \
    agentfarm-cl-05-neighbour --ignore-not-found --wait=false >/dev/null
  sleep 30
  node_ready "$NODE" || not_ready=$((not_ready + 1))
  if [ "$not_ready" = 0 ]; then
    pass "$NODE stays Ready under a fork bomb and a CPU spin ($RUNTIME_CLASS)"
  else
    fail "$NODE stays Ready under a fork bomb and a CPU spin ($RUNTIME_CLASS)" "NotReady at $not_ready looks"
  fi

  if ! printf '%s\n' "$log" | grep -q '^DONE$'; then
    fail "a neighbour keeps its pace" "the neighbour pod did not finish: $(printf '%s' "$log" | tail -n 3 | tr '\n' ' ')"
    return
  fi
  baseline=$(printf '%s\n' "$log" | slow_pace 3 "$BASELINE_END")
  stressed=$(printf '%s\n' "$log" | slow_pace "$STRESSED_FROM" "$PACE_SECONDS")
  if [ "$baseline" -gt 0 ] && [ $((stressed * 100)) -ge $((baseline * 80)) ]; then
    pass "a neighbour keeps its pace: p95 second $stressed forks under load vs $baseline before"
  else
    fail "a neighbour keeps its pace" "p95 second $stressed forks under load vs $baseline before (under 80 %)"
  fi
}

# Part two: how the control plane reports each way an agent can be stopped by its limits.
exhaust_agents() {
  local extra memory_run disk_run deadline_run reason execs=()
  extra=$(jq -n --arg class "$RUNTIME_CLASS" '{runtime_class: $class}')
  create_config "$READY_TASK" "$(printf '%s' "$extra" | jq '. + {memory: "1Gi"}')"
  launch_run "$CONFIG_ID"
  memory_run=$RUN_ID
  create_config "$READY_TASK" "$extra"
  launch_run "$CONFIG_ID"
  disk_run=$RUN_ID
  create_config "$READY_TASK" "$(printf '%s' "$extra" | jq '. + {timeout_minutes: 1}')"
  launch_run "$CONFIG_ID"
  deadline_run=$RUN_ID
  info "agents: memory $memory_run, /tmp $disk_run, timeout $deadline_run"

  # In the background: each ends when its agent does (or is killed below if it never does).
  if wait_for_run "$memory_run" waiting_for_input 900; then
    agent_exec "$memory_run" 'exec tail /dev/zero' >/dev/null 2>&1 &
    execs+=("$!")
  fi
  if wait_for_run "$disk_run" waiting_for_input 900; then
    agent_exec "$disk_run" 'exec dd if=/dev/zero of=/tmp/agentfarm-cl-05-fill bs=1M count=3072' \
      >/dev/null 2>&1 &
    execs+=("$!")
  fi

  wait_for_run "$memory_run" "$TERMINAL_STATES" 300 || true
  reason=$(run_field "$memory_run" .reason) || true
  case "$RUN_STATE:$reason" in
    failed:OOMKilled*) pass "an agent over its memory limit ends as OOMKilled" ;;
    *) fail "an agent over its memory limit ends as OOMKilled" "run $memory_run is $RUN_STATE: ${reason:-no reason}" ;;
  esac
  wait_for_run "$disk_run" "$TERMINAL_STATES" 300 || true
  reason=$(run_field "$disk_run" .reason) || true
  case "$RUN_STATE:$reason" in
    failed:evicted*) pass "an agent filling /tmp past its limit ends as evicted (ephemeral storage counted)" ;;
    *)
      fail "an agent filling /tmp past its limit ends as evicted" \
        "run $disk_run is $RUN_STATE: ${reason:-no reason} (are the sandbox's writes counted as ephemeral storage?)"
      ;;
  esac
  wait_for_run "$deadline_run" "$TERMINAL_STATES" 600 || true
  reason=$(run_field "$deadline_run" .reason) || true
  case "$RUN_STATE:$reason" in
    "failed:timed out"*) pass "an agent past its timeout ends as timed out (DeadlineExceeded)" ;;
    *) fail "an agent past its timeout ends as timed out" "run $deadline_run is $RUN_STATE: ${reason:-no reason}" ;;
  esac
  kill ${execs[@]+"${execs[@]}"} 2>/dev/null || true
}

start_check CL-05
require_kubectl
if [ "$PODS_ONLY" = 0 ]; then
  require_api
fi
if ! runtime_class_usable "$RUNTIME_CLASS"; then
  skip "resource exhaustion under $RUNTIME_CLASS" "$WHY_NOT"
  finish_checks
fi
if [ -z "$NODE" ]; then
  NODE=$(agent_nodes)
  NODE=${NODE%% *}
fi
if [ -z "$NODE" ]; then
  die 2 "no node is labelled $AGENT_NODE_LABEL"
fi

load_a_node
if [ "$PODS_ONLY" = 1 ]; then
  skip "how the control plane reports exhausted agents" "--pods-only"
else
  exhaust_agents
fi
if node_ready "$NODE"; then
  pass "$NODE is Ready at the end"
else
  fail "$NODE is Ready at the end" "it is not"
fi

finish_checks
