# shellcheck shell=bash disable=SC2034 # the names and settings here are the sourcing scripts' to use
# Shared by the cluster checks tests/cluster/cl-*.sh (sourced, never run): the names manifests/ gives
# things, the PASS/FAIL/SKIP lines, questions for the owner, labelled pods that look like agents, the
# agentfarm API, and one trap that removes whatever a check made. Only builtins run before a check
# starts, so that --help works with no cluster, no kubectl and no network. Written for bash 3.2 too
# (macOS): no associative arrays, no ${x,,}.

CHECKS_DIR=${BASH_SOURCE[0]%/*}
if [ "$CHECKS_DIR" = "${BASH_SOURCE[0]}" ]; then
  CHECKS_DIR=.
fi
CHECKS_DIR=$(cd "$CHECKS_DIR" && pwd)
REPO_ROOT=$(cd "$CHECKS_DIR/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../../infra/lib.sh
. "$REPO_ROOT/infra/lib.sh"

# Names from manifests/ and the server's defaults (backend/tests/integration/deploy/cluster_scripts.rs
# checks each against the rendered manifests and the server's constants).
AGENTS_NAMESPACE=agentfarm-agents
SYSTEM_NAMESPACE=agentfarm-system
NFS_NAMESPACE=agentfarm-nfs
NFS_SERVICE=nfs-server
CONTROL_PLANE=agentfarm-control-plane
CONTROL_PLANE_SELECTOR=app.kubernetes.io/name=agentfarm-control-plane
CONTROL_PLANE_SERVICE=agentfarm
CONTROL_PLANE_USER=system:serviceaccount:$SYSTEM_NAMESPACE:$CONTROL_PLANE
AGENTS_USER=system:serviceaccount:$AGENTS_NAMESPACE:default
DATA_CLAIM=agentfarm-data
SETTINGS_CONFIGMAP=agentfarm-settings
CLAUDE_TOKEN_SECRET=claude-token
GITHUB_TOKEN_SECRET=github-token
VAPID_SECRET=vapid-keys
AGENT_NODE_LABEL=agentfarm.dev/role=agents
KVM_NODE_LABEL=agentfarm.dev/kvm=true
DEFAULT_RUNTIME_CLASS=gvisor
AGENT_CONTAINER=agent
RUN_LABEL=agentfarm.dev/run
MANAGED_SELECTOR=app.kubernetes.io/managed-by=agentfarm
ARCHIVE_FINALIZER=agentfarm.dev/archive-logs

# Every object a check makes carries CHECK_LABEL=<its key>, e.g. agentfarm.dev/cluster-check=cl-05.
CHECK_LABEL=agentfarm.dev/cluster-check
# Pinned (a moving tag would change what is measured). The curl image is infra/probe-netpol.sh's; busybox
# is the one infra/README.md's backup pod uses.
CURL_IMAGE=curlimages/curl:8.18.0
BUSYBOX_IMAGE=busybox:1.37.0

# The model of the agents a check launches: the cheapest is enough to answer "ready".
CHECK_MODEL=${AGENTFARM_CHECK_MODEL:-haiku}
# A task an agent finishes in one turn, after which it waits for a follow-up (until the idle timeout).
READY_TASK='Reply with the single word ready. Do not use any tools.'
TERMINAL_STATES="succeeded failed stopped lost"

# --- results -------------------------------------------------------------------------------------------

CHECK_ID=
CHECK_KEY=
PASSED=0
FAILED=0
SKIPPED=0

pass() {
  PASSED=$((PASSED + 1))
  printf 'PASS %s %s\n' "$CHECK_ID" "$1"
}
# $1 what was checked, $2 why it failed.
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL %s %s: %s\n' "$CHECK_ID" "$1" "$2"
}
# $1 what was not checked, $2 why (a missing precondition).
skip() {
  SKIPPED=$((SKIPPED + 1))
  printf 'SKIP %s %s: %s\n' "$CHECK_ID" "$1" "$2"
}

# Prints the tally and exits: 1 if anything failed, else 0 (skips do not fail a check).
finish_checks() {
  printf '%s: %d passed, %d failed, %d skipped\n' "$CHECK_ID" "$PASSED" "$FAILED" "$SKIPPED"
  if [ "$FAILED" -gt 0 ]; then
    exit 1
  fi
  exit 0
}

# --- start and cleanup ---------------------------------------------------------------------------------

CLEANUP_STEPS=()
PODS_STARTED=0
CHECK_RUNS=()
CHECK_CONFIGS=()

# Runs function $1 when the check exits, however it exits (the last one registered runs first).
on_exit() {
  CLEANUP_STEPS+=("$1")
}

cleanup() {
  local status=$? index
  trap - EXIT INT TERM
  set +e
  for ((index = ${#CLEANUP_STEPS[@]} - 1; index >= 0; index--)); do
    "${CLEANUP_STEPS[index]}"
  done
  if [ "${#CHECK_RUNS[@]}" -gt 0 ] || [ "${#CHECK_CONFIGS[@]}" -gt 0 ]; then
    remove_check_runs
  fi
  if [ "$PODS_STARTED" = 1 ]; then
    kubectl delete pods --all-namespaces -l "$CHECK_LABEL=$CHECK_KEY" --ignore-not-found --wait=false \
      >/dev/null
  fi
  exit "$status"
}

# Begins check $1 (e.g. CL-05): names its output and its label, and removes what it makes on exit.
start_check() {
  CHECK_ID=$1
  CHECK_KEY=cl-${1#CL-}
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Fails (exit 2) without kubectl or a cluster that answers; removes pods an interrupted earlier run left.
require_kubectl() {
  if ! have kubectl; then
    die 2 "kubectl is missing: https://kubernetes.io/docs/tasks/tools/ (macOS: brew install kubectl)"
  fi
  KUBECONFIG_NOTE=${KUBECONFIG_NOTE:-the default kubeconfig}
  require_cluster
  kubectl delete pods --all-namespaces -l "$CHECK_LABEL=$CHECK_KEY" --ignore-not-found --wait=true \
    --timeout=90s >/dev/null
}

# --- the owner's answers -------------------------------------------------------------------------------

ANSWERS=${AGENTFARM_CHECK_ANSWERS:-}

# Prints the owner's answer to question $2 (key $1; "cl-09.$1" in --answers): y or n, from --answers or
# else from the terminal; nothing when there is neither.
owner_answer() {
  local key="$CHECK_KEY.$1" question=$2 entry reply entries=()
  IFS=, read -r -a entries <<<"$ANSWERS"
  for entry in ${entries[@]+"${entries[@]}"}; do
    case "$entry" in
      "$key=y" | "$key=yes") echo y && return ;;
      "$key=n" | "$key=no") echo n && return ;;
    esac
  done
  if [ -t 0 ]; then
    while read -r -p "$question [y/n] " reply; do
      case "$reply" in
        y | Y | yes) echo y && return ;;
        n | N | no) echo n && return ;;
      esac
    done
  fi
}

# PASS or FAIL check $1 by the owner's answer to question $3 (key $2); SKIP without an answer.
ask_owner() {
  local answer
  answer=$(owner_answer "$2" "$3")
  case "$answer" in
    y) pass "$1" ;;
    n) fail "$1" "the owner answered no to: $3" ;;
    *) skip "$1" "no answer (run it in a terminal, or pass --answers $CHECK_KEY.$2=y or =n)" ;;
  esac
}

# Shows the owner what to do now and, in a terminal, waits until they press Enter.
owner_step() {
  printf '\n>>> %s\n' "$1"
  if [ -t 0 ]; then
    read -r -p 'Press Enter when done. ' _
  fi
}

# Prints the usage lines of --answers; $1 an example list.
answers_help() {
  printf '  --answers LIST        answers to the questions, e.g. %s (default\n' "$1"
  cat <<'EOF'
                        $AGENTFARM_CHECK_ANSWERS); a question without an answer is asked in a
                        terminal, else reported as SKIP
EOF
}

# --- pods that look like agents ------------------------------------------------------------------------

# Prints pod $1: image $2 runs the sh script $3 with the remaining arguments as $1, $2, …. Unless told
# otherwise it looks like an agent to the cluster: namespace agentfarm-agents, RuntimeClass gvisor, an agent
# node, the `restricted` security context, requests and limits for the quota, no ServiceAccount token.
# Variables set for the call tune it:
#   POD_NODE           a node name (default: any node labelled agentfarm.dev/role=agents)
#   POD_RUNTIME_CLASS  default gvisor; set but empty: none (the node's default runtime)
#   POD_CPU, POD_MEMORY, POD_STORAGE   limits (default 250m, 64Mi, 64Mi); POD_TMP: the /tmp emptyDir (16Mi)
#   POD_DEADLINE       activeDeadlineSeconds
#   POD_TOKEN=namespace-default        leave automountServiceAccountToken to the ServiceAccount
#   POD_NAMESPACE, POD_HOST_NETWORK=true  an admin pod on the node's own network (any taint tolerated)
#   POD_CLAIM          a PersistentVolumeClaim mounted at /data (read-only with POD_CLAIM_READ_ONLY=true)
check_pod_manifest() {
  local name=$1 image=$2 script=$3 arg
  shift 3
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  namespace: ${POD_NAMESPACE:-$AGENTS_NAMESPACE}
  labels:
    $CHECK_LABEL: $CHECK_KEY
    app.kubernetes.io/part-of: agentfarm
spec:
  restartPolicy: Never
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
EOF
  if [ "${POD_TOKEN:-}" != namespace-default ]; then
    echo "  automountServiceAccountToken: false"
  fi
  if [ -n "${POD_NODE:-}" ]; then
    echo "  nodeName: $POD_NODE"
  fi
  # The sandbox policy admits pods in the agents' namespace only with the agents' node selector, a node name
  # or not.
  if [ -z "${POD_NODE:-}" ] || [ "${POD_NAMESPACE:-$AGENTS_NAMESPACE}" = "$AGENTS_NAMESPACE" ]; then
    printf '  nodeSelector:\n    %s: %s\n' "${AGENT_NODE_LABEL%%=*}" "${AGENT_NODE_LABEL#*=}"
  fi
  if [ -n "${POD_RUNTIME_CLASS-$DEFAULT_RUNTIME_CLASS}" ]; then
    echo "  runtimeClassName: ${POD_RUNTIME_CLASS-$DEFAULT_RUNTIME_CLASS}"
  fi
  if [ -n "${POD_DEADLINE:-}" ]; then
    echo "  activeDeadlineSeconds: $POD_DEADLINE"
  fi
  if [ "${POD_HOST_NETWORK:-}" = true ]; then
    printf '  hostNetwork: true\n  tolerations:\n    - operator: Exists\n'
  fi
  cat <<EOF
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: check
      image: $image
      command: ["sh", "-c"]
      args:
        - |
EOF
  printf '%s\n' "$script" | sed 's/^./          &/'
  printf '        - "%s"\n' "$name"
  for arg in "$@"; do
    arg=${arg//\\/\\\\}
    printf '        - "%s"\n' "${arg//\"/\\\"}"
  done
  cat <<EOF
      securityContext:
        allowPrivilegeEscalation: false
        privileged: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
      resources:
        requests: {cpu: 50m, memory: 32Mi, ephemeral-storage: 16Mi}
        limits: {cpu: "${POD_CPU:-250m}", memory: "${POD_MEMORY:-64Mi}", ephemeral-storage: "${POD_STORAGE:-64Mi}"}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
EOF
  if [ -n "${POD_CLAIM:-}" ]; then
    echo "        - {name: data, mountPath: /data, readOnly: ${POD_CLAIM_READ_ONLY:-false}}"
  fi
  cat <<EOF
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: "${POD_TMP:-16Mi}"}
EOF
  if [ -n "${POD_CLAIM:-}" ]; then
    echo "    - {name: data, persistentVolumeClaim: {claimName: $POD_CLAIM, readOnly: ${POD_CLAIM_READ_ONLY:-false}}}"
  fi
}

# Creates the pod check_pod_manifest describes (same arguments and variables).
start_pod() {
  PODS_STARTED=1
  check_pod_manifest "$@" | kubectl apply -f - >/dev/null
}

# Prints pod $1's phase (Pending, Running, Succeeded, Failed) or nothing when it does not exist.
pod_phase() {
  kubectl -n "${POD_NAMESPACE:-$AGENTS_NAMESPACE}" get pod "$1" -o jsonpath='{.status.phase}' \
    --ignore-not-found 2>/dev/null || true
}

# Waits up to $2 seconds until pod $1 is in one of the phases $3 (space-separated); 1 if it never is.
wait_for_pod_phase() {
  local deadline=$((SECONDS + $2)) phase
  while [ "$SECONDS" -lt "$deadline" ]; do
    phase=$(pod_phase "$1")
    case " $3 " in
      *" $phase "*) return 0 ;;
    esac
    sleep 2
  done
  return 1
}

# Starts a pod (start_pod's arguments after $1), waits up to $1 seconds for it to end, prints its log and
# deletes it. 1 if it did not end in time (its log so far is printed anyway), 2 if it was refused.
run_pod() {
  local timeout=$1 name=$2 status=0
  shift
  start_pod "$@" || return 2
  wait_for_pod_phase "$name" "$timeout" "Succeeded Failed" || status=1
  kubectl -n "${POD_NAMESPACE:-$AGENTS_NAMESPACE}" logs "$name" 2>&1 || true
  kubectl -n "${POD_NAMESPACE:-$AGENTS_NAMESPACE}" delete pod "$name" --ignore-not-found --timeout=60s \
    >/dev/null 2>&1 || true
  return "$status"
}

# The shell function, for a probe pod's script, that tells whether a TCP connection to a URL's host and
# port was made: `connects URL` prints yes or no ("dns" when the name did not resolve). Curl's count of
# connections made decides: any answer after connecting (HTTP, a TLS error, silence) is "yes", so that
# only a dropped or refused connection counts as unreachable.
# shellcheck disable=SC2016 # expanded by the pod's shell
CONNECTS_FUNCTION='
connects() {
  code=0
  made=$(curl -sk -o /dev/null -w "%{num_connects}" --connect-timeout 4 --max-time 8 "$1") || code=$?
  if [ "$code" = 6 ]; then
    echo dns
  elif [ "$code" = 0 ] || [ "${made:-0}" != 0 ]; then
    echo yes
  else
    echo no
  fi
}
'

# --- nodes and runtime classes -------------------------------------------------------------------------

# The names of the nodes agents run on.
agent_nodes() {
  kubectl get nodes -l "$AGENT_NODE_LABEL" -o jsonpath='{.items[*].metadata.name}'
}

# Whether node $1 is Ready.
node_ready() {
  [ "$(kubectl get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

# Whether RuntimeClass $1 can run pods here: it exists and, for Kata, a node is labelled for KVM. Sets
# WHY_NOT when it cannot.
runtime_class_usable() {
  WHY_NOT=
  if ! kubectl get runtimeclass "$1" -o name >/dev/null 2>&1; then
    WHY_NOT="there is no RuntimeClass $1 (kubectl get runtimeclass)"
    return 1
  fi
  case "$1" in
    kata*)
      if [ -z "$(kubectl get nodes -l "$KVM_NODE_LABEL" -o name)" ]; then
        WHY_NOT="no node is labelled $KVM_NODE_LABEL: Kata needs a KVM node (infra/README.md)"
        return 1
      fi
      ;;
  esac
}

# --- the agentfarm API ---------------------------------------------------------------------------------

API_URL=${AGENTFARM_URL:-}
API_ORIGIN=

# Usage lines of the API checks.
api_help() {
  cat <<'EOF'
  --url URL             the agentfarm app, e.g. https://agentfarm.tail1234.ts.net (default $AGENTFARM_URL,
                        else AGENTFARM_PUBLIC_URL in the ConfigMap agentfarm-settings); this machine must
                        be on the tailnet. Agents launched use the model $AGENTFARM_CHECK_MODEL (haiku)
EOF
}

# scheme://host[:port] of URL $1: the Origin a browser on that page sends.
origin_of() {
  local rest=${1#*://}
  printf '%s://%s' "${1%%://*}" "${rest%%/*}"
}

# Fails (exit 2) without curl, jq or an agentfarm that answers and runs agents in the cluster.
require_api() {
  local info kind
  have curl || die 2 "curl is missing"
  have jq || die 2 "jq is missing: https://jqlang.org/download/ (macOS: brew install jq)"
  if [ -z "$API_URL" ]; then
    API_URL=$(kubectl -n "$SYSTEM_NAMESPACE" get configmap "$SETTINGS_CONFIGMAP" \
      -o jsonpath='{.data.AGENTFARM_PUBLIC_URL}' 2>/dev/null) || true
  fi
  if [ -z "$API_URL" ]; then
    die 2 "no agentfarm URL: pass --url or set AGENTFARM_URL"
  fi
  API_URL=${API_URL%/}
  API_ORIGIN=$(origin_of "$API_URL")
  info=$(api GET /api/info) || die 2 "cannot reach agentfarm at $API_URL (is this machine on the tailnet?)"
  kind=$(printf '%s' "$info" | jq -r '.runtime.kind')
  if [ "$kind" != kubernetes ]; then
    die 2 "agentfarm at $API_URL runs agents with the $kind runtime, not in the cluster"
  fi
}

# Sends request $1 (method) for $2 (path) with the JSON body $3 (through stdin, never argv) and the
# page's Origin, as the app does; prints the response body. 1 (with the API's message) unless 2xx.
api() {
  local method=$1 path=$2 body=${3-} response status
  local options=(--silent --show-error --max-time 60 --request "$method" --header "Origin: $API_ORIGIN"
    --header 'Accept: application/json' --write-out '\n%{http_code}')
  if [ -n "$body" ]; then
    options+=(--header 'Content-Type: application/json' --data-binary @-)
  fi
  if ! response=$(printf '%s' "$body" | curl "${options[@]}" "$API_URL$path"); then
    warn "$method $path: no answer from $API_URL"
    return 1
  fi
  status=${response##*$'\n'}
  response=${response%$'\n'*}
  case "$status" in
    2??) printf '%s\n' "$response" ;;
    *)
      warn "$method $path: HTTP $status $(printf '%s' "$response" | jq -r '.error.message? // empty' 2>/dev/null)"
      return 1
      ;;
  esac
}

# Waits up to $1 seconds until the app answers /readyz.
wait_for_app() {
  local deadline=$((SECONDS + $1))
  until api GET /readyz >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 3
  done
}

# Creates a config for this check whose task is $1 (e.g. READY_TASK); $2, a JSON object, overrides
# fields (e.g. {"memory": "1Gi"}). Sets CONFIG_ID. The config is deleted on exit.
create_config() {
  local task=$1 extra=${2:-} spec
  if [ -z "$extra" ]; then
    extra='{}'
  fi
  spec=$(jq -n --arg name "cluster check $CHECK_KEY $(date +%s)" --arg task "$task" \
    --arg model "$CHECK_MODEL" --argjson extra "$extra" \
    '{name: $name, task_prompt: $task, model: $model, max_turns: 5, timeout_minutes: 60} + $extra')
  CONFIG_ID=$(api POST /api/configs "$spec" | jq -r '.id') || die 1 "could not create a config"
  CHECK_CONFIGS+=("$CONFIG_ID")
}

# Launches a run of config $1 (with prompt $2 instead of its task, if given). Sets RUN_ID; 1 if the API
# refused. The run is stopped and deleted on exit.
launch_run() {
  local request
  request=$(jq -n --arg config "$1" --arg prompt "${2-}" \
    '{config_id: $config} + (if $prompt == "" then {} else {prompt: $prompt} end)')
  if ! RUN_ID=$(api POST /api/runs "$request" | jq -r '.id'); then
    warn "could not launch a run of config $1"
    return 1
  fi
  CHECK_RUNS+=("$RUN_ID")
}

# Prints field $2 of run $1 (a jq path such as .state), empty when null.
run_field() {
  api GET "/api/runs/$1" | jq -r "$2 // empty"
}

# Waits up to $3 seconds until run $1 is in one of the states $2 (space-separated); sets RUN_STATE. 1 if
# it never is, including when it ends in another state first.
wait_for_run() {
  local deadline=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$deadline" ]; do
    RUN_STATE=$(run_field "$1" .state) || RUN_STATE=
    case " $2 " in
      *" $RUN_STATE "*) return 0 ;;
    esac
    case " $TERMINAL_STATES " in
      *" $RUN_STATE "*) return 1 ;;
    esac
    sleep 5
  done
  return 1
}

# Waits up to 15 minutes until run $1 waits for input; otherwise fails check $2 and ends the checks.
expect_waiting() {
  if ! wait_for_run "$1" waiting_for_input 900; then
    fail "$2" "run $1 is ${RUN_STATE:-unknown}, not waiting for input after 15 minutes"
    finish_checks
  fi
}

# Prints the name of run $1's pod (empty when it has none).
run_pod_name() {
  kubectl -n "$AGENTS_NAMESPACE" get pods -l "$RUN_LABEL=$1" -o jsonpath='{.items[0].metadata.name}' \
    2>/dev/null || true
}

# Runs the sh script $2 in run $1's agent container, as the agent's user, with the remaining arguments as
# $1, $2, …; prints its output.
agent_exec() {
  local run=$1 script=$2
  shift 2
  kubectl -n "$AGENTS_NAMESPACE" exec "$(run_pod_name "$run")" -c "$AGENT_CONTAINER" -- \
    sh -c "$script" agent-exec "$@"
}

# Stops every run this check launched, waits for them to end, deletes them and its configs.
remove_check_runs() {
  local run state deadline
  for run in ${CHECK_RUNS[@]+"${CHECK_RUNS[@]}"}; do
    state=$(run_field "$run" .state 2>/dev/null) || continue
    case " $TERMINAL_STATES " in
      *" $state "*) ;;
      *) api POST "/api/runs/$run/stop" >/dev/null 2>&1 || true ;;
    esac
  done
  deadline=$((SECONDS + 120))
  for run in ${CHECK_RUNS[@]+"${CHECK_RUNS[@]}"}; do
    while [ "$SECONDS" -lt "$deadline" ]; do
      state=$(run_field "$run" .state 2>/dev/null) || break
      case " $TERMINAL_STATES " in
        *" $state "*) break ;;
      esac
      sleep 3
    done
    api DELETE "/api/runs/$run" >/dev/null 2>&1 || warn "run $run was not deleted: delete it in the app"
  done
  for run in ${CHECK_CONFIGS[@]+"${CHECK_CONFIGS[@]}"}; do
    api DELETE "/api/configs/$run" >/dev/null 2>&1 || warn "config $run was not deleted: delete it in the app"
  done
}

# Asks the owner question $3 (key $2) about their phone's notifications as check $1; SKIP when no device
# has subscribed to push.
ask_about_push() {
  local devices
  devices=$(api GET /api/push/subscriptions | jq 'length') || devices=0
  if [ "$devices" = 0 ]; then
    skip "$1" "no device has turned on notifications (Settings → Notifications in the app)"
    return
  fi
  ask_owner "$1" "$2" "$3"
}
