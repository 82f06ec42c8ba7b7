#!/usr/bin/env bash
# CL-03: what the Kubernetes API lets agents and the control plane do. An agent pod gets no ServiceAccount
# token; the control plane's ServiceAccount may do exactly what manifests/base/control-plane/rbac.yaml
# grants (asked with `kubectl auth can-i --as`), the agents' none of it; a privileged pod is refused by
# Pod Security `restricted` in both namespaces (a server-side dry run: nothing is created).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-03-rbac.sh [--help]

CL-03 Kubernetes API reachability and RBAC.
Pass: a pod in agentfarm-agents that leaves the token to the namespace's ServiceAccount has no
/var/run/secrets/kubernetes.io/serviceaccount/token, and neither do running agents; `kubectl auth can-i
--as=system:serviceaccount:agentfarm-system:agentfarm-control-plane` says yes to jobs, pods and making
(never reading) the runs' capability Secrets in agentfarm-agents and to the owner's two token Secrets by name
in agentfarm-system, and no to reading or listing other Secrets, pods/exec, creating pods and other
namespaces; the agents' ServiceAccount may do none of it; a privileged pod is rejected by Pod
Security `restricted` in agentfarm-agents and agentfarm-system.

Needs: kubectl, ./kubeconfig or $KUBECONFIG (cluster admin, to impersonate).
Changes: one short-lived pod in agentfarm-agents labelled agentfarm.dev/cluster-check=cl-03, deleted on
exit. The privileged pods are server-side dry runs: never created.

  --help    this text

Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

for arg in "$@"; do
  help_or_unknown "$arg"
done

# What each ServiceAccount may do: "want verb resource subresource name namespace", "-" for none
# (namespace "-": cluster-wide). The yes lines are rbac.yaml's grants, the no lines a sample of the rest.
permission_table() {
  local agents=$AGENTS_NAMESPACE system=$SYSTEM_NAMESPACE verb
  for verb in create get list watch delete patch; do
    echo "yes $verb jobs.batch - - $agents"
  done
  for verb in get list watch delete patch; do
    echo "yes $verb pods - - $agents"
  done
  cat <<EOF
yes get pods log - $agents
yes create pods attach - $agents
yes get pods attach - $agents
yes create secrets - - $agents
yes patch secrets - - $agents
yes delete secrets - - $agents
yes get secrets - $CLAUDE_TOKEN_SECRET $system
yes get secrets - $GITHUB_TOKEN_SECRET $system
yes get persistentvolumeclaims - - $agents
yes list runtimeclasses.node.k8s.io - - -
yes list nodes - - -
yes get namespaces - $agents -
no list secrets - - $agents
no watch secrets - - $agents
no get secrets - - $agents
no get secrets - $CLAUDE_TOKEN_SECRET $agents
no get secrets - agentfarm-not-a-token $agents
no list secrets - - $system
no get secrets - $VAPID_SECRET $system
no create pods - - $agents
no create pods exec - $agents
no get pods exec - $agents
no create pods portforward - $agents
no delete persistentvolumeclaims - - $agents
no create roles.rbac.authorization.k8s.io - - $agents
no create rolebindings.rbac.authorization.k8s.io - - $agents
no create jobs.batch - - $system
no list pods - - $system
no patch deployments.apps - - $system
no create serviceaccounts token - $system
no get configmaps - - $system
no list pods - - kube-system
no get secrets - - kube-system
no create jobs.batch - - default
no get namespaces - kube-system -
no get nodes - - -
no create clusterrolebindings.rbac.authorization.k8s.io - - -
no * * - - -
EOF
}

# Asks the API server whether $1 (a user) may do what a permission_table line ($2…) says; prints yes or no.
can_i() {
  local user=$1 verb=$3 resource=$4 subresource=$5 name=$6 namespace=$7 args=() answer
  if [ "$name" != - ]; then
    resource=$resource/$name
  fi
  args=(auth can-i "$verb" "$resource")
  if [ "$subresource" != - ]; then
    args+=("--subresource=$subresource")
  fi
  if [ "$namespace" != - ]; then
    args+=(--namespace "$namespace")
  fi
  answer=$(kubectl "${args[@]}" "--as=$user" 2>/dev/null) || true
  printf '%s\n' "${answer%% *}"
}

# Words for a permission_table line's request, for check names.
describe_request() {
  local verb=$2 resource=$3 subresource=$4 name=$5 namespace=$6 text
  text="$verb $resource"
  if [ "$subresource" != - ]; then
    text="$text/$subresource"
  fi
  if [ "$name" != - ]; then
    text="$text $name"
  fi
  if [ "$namespace" != - ]; then
    text="$text in $namespace"
  else
    text="$text cluster-wide"
  fi
  printf '%s' "$text"
}

# Checks every permission_table line for user $1 (named $2 in the output); $3 "all-no" expects no to all.
check_permissions() {
  local user=$1 who=$2 mode=${3:-} line want answer
  while read -r line; do
    set -f # the line's words, * included, are literal
    # shellcheck disable=SC2086
    set -- $line
    set +f
    want=$1
    if [ "$mode" = all-no ]; then
      want=no
    fi
    answer=$(can_i "$user" "$@")
    case "$want:$answer" in
      yes:yes) pass "$who may $(describe_request "$@")" ;;
      no:no) pass "$who may not $(describe_request "$@")" ;;
      yes:no) fail "$who may $(describe_request "$@")" "kubectl auth can-i says no" ;;
      no:yes) fail "$who may not $(describe_request "$@")" "kubectl auth can-i says yes" ;;
      *) fail "$who: $(describe_request "$@")" "kubectl auth can-i gave no answer" ;;
    esac
  done < <(permission_table)
}

# A pod Pod Security `restricted` must refuse: privileged, host namespaces, a hostPath.
privileged_pod() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: agentfarm-cl-03-privileged
  namespace: $1
  labels:
    $CHECK_LABEL: $CHECK_KEY
spec:
  hostNetwork: true
  hostPID: true
  containers:
    - name: check
      image: $BUSYBOX_IMAGE
      command: ["sleep", "60"]
      securityContext:
        privileged: true
      volumeMounts:
        - {name: host, mountPath: /host}
  volumes:
    - name: host
      hostPath: {path: /}
EOF
}

# shellcheck disable=SC2016 # expanded by the pod's shell
TOKEN_SCRIPT='
if [ -e /var/run/secrets/kubernetes.io/serviceaccount/token ]; then echo "TOKEN present"; else echo "TOKEN absent"; fi
'

start_check CL-03
require_kubectl

output=$(POD_TOKEN=namespace-default run_pod 300 agentfarm-cl-03-token "$BUSYBOX_IMAGE" "$TOKEN_SCRIPT" 2>&1) || true
case "$output" in
  *"TOKEN absent"*) pass "a pod in $AGENTS_NAMESPACE gets no ServiceAccount token by default" ;;
  *"TOKEN present"*) fail "a pod in $AGENTS_NAMESPACE gets no ServiceAccount token by default" "the token is mounted" ;;
  *) fail "a pod in $AGENTS_NAMESPACE gets no ServiceAccount token by default" "the pod did not report: $output" ;;
esac

agent_volumes=$(kubectl -n "$AGENTS_NAMESPACE" get pods -l "$MANAGED_SELECTOR" \
  -o jsonpath='{range .items[*]}{.metadata.name}{":"}{range .spec.volumes[*]}{" "}{.name}{end}{"\n"}{end}')
if [ -z "$agent_volumes" ]; then
  skip "running agents have no ServiceAccount token" "no agent pod exists now"
elif printf '%s\n' "$agent_volumes" | grep -q ' kube-api-access-'; then
  fail "running agents have no ServiceAccount token" \
    "mounted in $(printf '%s\n' "$agent_volumes" | grep ' kube-api-access-' | cut -d: -f1 | tr '\n' ' ')"
else
  pass "running agents have no ServiceAccount token"
fi

check_permissions "$CONTROL_PLANE_USER" "the control plane"
check_permissions "$AGENTS_USER" "the agents' ServiceAccount" all-no

for namespace in "$AGENTS_NAMESPACE" "$SYSTEM_NAMESPACE"; do
  if refusal=$(privileged_pod "$namespace" | kubectl apply --dry-run=server -f - 2>&1); then
    fail "a privileged pod is refused in $namespace" "the API server accepted it (dry run)"
  elif printf '%s' "$refusal" | grep -q 'violates PodSecurity'; then
    pass "a privileged pod is refused in $namespace by Pod Security restricted"
  else
    fail "a privileged pod is refused in $namespace" "refused, but not by Pod Security: $refusal"
  fi
done

finish_checks
