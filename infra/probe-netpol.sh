#!/usr/bin/env bash
# Measures the agents' egress NetworkPolicies (SECURITY.md T5-T7) from pods that look like
# agents: namespace agentfarm-agents, RuntimeClass gvisor (or --runtime-class), the `restricted` security
# context, one pod on each agent node (a policy can behave differently towards the pod's own node). Each
# check prints PASS or FAIL; the exit status is 1 if any check fails or a probe pod does not report.
#
# Usage: infra/probe-netpol.sh [--dry-run] [--node NAME] [--runtime-class NAME] [--help]
#
# Blocked: the metadata service (169.254.169.254), the Kubernetes API Service (10.43.0.1), every node's
# public and private address on 6443 (API server) and 10250 (kubelet). Reachable: https://api.github.com.
# The policy allows only TCP 443, where no node listens, so a node's public IPv4 missing from its
# exceptions cannot show from a pod: it is checked in the policy itself (every node's ExternalIP excepted).
# "Blocked" means the connection timed out or was refused (curl exit 28 or 7); any other answer, even a
# TLS error or an HTTP 401, means a TCP connection was made, and fails the check.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Pinned (a moving tag would change what is measured); any image with sh and curl works.
PROBE_IMAGE=curlimages/curl:8.18.0
NAMESPACE=agentfarm-agents
AGENT_LABEL=agentfarm.dev/role=agents
POD_NAME=agentfarm-netpol-probe
API_SERVICE_IP=10.43.0.1
METADATA_URL=http://169.254.169.254/hetzner/v1/userdata
INTERNET_URL=https://api.github.com/zen

usage() {
  cat <<'EOF'
Usage: infra/probe-netpol.sh [--dry-run] [--node NAME] [--runtime-class NAME] [--help]

Runs one short-lived probe pod (curl image, RuntimeClass gvisor by default) in
agentfarm-agents on each node labelled agentfarm.dev/role=agents, and checks from it that the agents'
NetworkPolicies block the metadata service, the Kubernetes API and every node's 6443/10250, and let
HTTPS to the internet through. Uses ./kubeconfig or $KUBECONFIG.

  --dry-run    list the checks; contacts no cluster
  --node NAME  probe from this node only
  --runtime-class NAME
               run the probe pods with this RuntimeClass (default gvisor; e.g. kata-clh)
  --help       this text

Exit status: 0 all checks passed, 1 a check failed or a probe did not report, 2 usage or prerequisites.
EOF
}

DRY_RUN=0
ONLY_NODE=""
RUNTIME_CLASS=gvisor
while [ "$#" -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --node) require_value "$@"; ONLY_NODE=$2; shift ;;
    --runtime-class) require_value "$@"; RUNTIME_CLASS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

# The checks, run by the image's sh. $1: space-separated node addresses. Prints PASS/FAIL lines, then
# DONE with the number of failures (the caller requires it: a pod that never ran must not look clean).
# shellcheck disable=SC2016 # expanded by the pod's shell, not this one
PROBE_SCRIPT='
fails=0
check() {
  want=$1 name=$2 url=$3 code=0
  curl -sk -o /dev/null --connect-timeout 5 --max-time 10 "$url" || code=$?
  case "$want:$code" in
    reachable:0) echo "PASS $name reachable" ;;
    reachable:*) echo "FAIL $name not reachable (curl exit $code)"; fails=$((fails + 1)) ;;
    blocked:7 | blocked:28) echo "PASS $name blocked (curl exit $code)" ;;
    blocked:0) echo "FAIL $name reachable"; fails=$((fails + 1)) ;;
    blocked:*) echo "FAIL $name connected (curl exit $code)"; fails=$((fails + 1)) ;;
  esac
}
check blocked "metadata $METADATA_URL" "$METADATA_URL"
check blocked "api-service $API_SERVICE_IP:443" "https://$API_SERVICE_IP/"
for ip in $1; do
  check blocked "node $ip:6443" "https://$ip:6443/"
  check blocked "node $ip:10250" "https://$ip:10250/"
done
check reachable "internet $INTERNET_URL" "$INTERNET_URL"
echo "DONE $fails"
'

if [ "$DRY_RUN" = 1 ]; then
  echo "would run $PROBE_IMAGE (RuntimeClass $RUNTIME_CLASS) in $NAMESPACE on ${ONLY_NODE:-each node labelled $AGENT_LABEL}, and check:"
  echo "  blocked    metadata service    $METADATA_URL"
  echo "  blocked    Kubernetes API      https://$API_SERVICE_IP:443 (the kubernetes Service)"
  echo "  blocked    every node          <ExternalIP and InternalIP>:6443 and :10250 (from kubectl get nodes)"
  echo "  excepted   every node's public IPv4 in the agents' egress policy (allow-https-internet)"
  echo "  reachable  the internet        $INTERNET_URL"
  echo "(dry run: nothing run)"
  exit 0
fi

have kubectl || die 2 "kubectl is missing: https://kubernetes.io/docs/tasks/tools/ (macOS: brew install kubectl)"
require_cluster

addresses=$(
  kubectl get nodes -o jsonpath='{range .items[*]}{range .status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}{end}'
  kubectl get nodes -o jsonpath='{range .items[*]}{range .status.addresses[?(@.type=="InternalIP")]}{.address}{"\n"}{end}{end}'
)
node_ips=""
ipv4='^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
for address in $(printf '%s\n' "$addresses" | sort -u); do
  if [[ $address =~ $ipv4 ]]; then
    node_ips="$node_ips $address"
  fi
done

failed=0

# Every node's public IPv4 excepted from the agents' internet egress (bootstrap adds them; nodes that joined
# since are missing until it runs again).
excepted=$(kubectl -n "$NAMESPACE" get networkpolicy allow-https-internet \
  -o jsonpath='{.spec.egress[0].to[0].ipBlock.except}' 2>/dev/null || true)
external=$(kubectl get nodes \
  -o jsonpath='{range .items[*]}{range .status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}{end}')
for address in $(printf '%s\n' "$external" | sort -u); do
  if ! [[ $address =~ $ipv4 ]]; then
    continue
  fi
  if [[ $excepted == *"\"$address/32\""* ]]; then
    echo "    PASS node $address excepted from the agents' egress"
  else
    echo "    FAIL node $address is not excepted from the agents' egress: re-run infra/bootstrap.sh"
    failed=1
  fi
done

if [ -n "$ONLY_NODE" ]; then
  nodes=$ONLY_NODE
else
  nodes=$(kubectl get nodes -l "$AGENT_LABEL" -o jsonpath='{.items[*].metadata.name}')
fi
if [ -z "$nodes" ]; then
  echo "error: no node carries $AGENT_LABEL (pass --node NAME to probe from another node)" >&2
  exit 2
fi

# A strategic merge into the pod kubectl generates (containers merge by name, so image, command and env
# stay): everything the `restricted` Pod Security level of the namespace, its ResourceQuota and the sandbox
# policy (manifests/base/cluster/agent-sandbox-policy.yaml) require.
overrides() {
  cat <<EOF
{
  "apiVersion": "v1",
  "spec": {
    "nodeName": "$1",
    "nodeSelector": {"${AGENT_LABEL%%=*}": "${AGENT_LABEL#*=}"},
    "runtimeClassName": "$RUNTIME_CLASS",
    "automountServiceAccountToken": false,
    "enableServiceLinks": false,
    "securityContext": {
      "runAsNonRoot": true,
      "runAsUser": 10001,
      "runAsGroup": 10001,
      "seccompProfile": {"type": "RuntimeDefault"}
    },
    "containers": [
      {
        "name": "$POD_NAME",
        "securityContext": {
          "allowPrivilegeEscalation": false,
          "privileged": false,
          "readOnlyRootFilesystem": true,
          "runAsNonRoot": true,
          "capabilities": {"drop": ["ALL"]},
          "seccompProfile": {"type": "RuntimeDefault"}
        },
        "resources": {
          "requests": {"cpu": "50m", "memory": "32Mi", "ephemeral-storage": "16Mi"},
          "limits": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "64Mi"}
        }
      }
    ]
  }
}
EOF
}

for node in $nodes; do
  echo "==> probing from node $node (addresses:${node_ips:- none})"
  kubectl -n "$NAMESPACE" delete pod "$POD_NAME" --ignore-not-found --wait=true >/dev/null
  output=$(kubectl -n "$NAMESPACE" run "$POD_NAME" --image="$PROBE_IMAGE" --restart=Never --rm -i --quiet \
    --labels=app.kubernetes.io/name=netpol-probe,app.kubernetes.io/part-of=agentfarm \
    --pod-running-timeout=3m --override-type=strategic --overrides="$(overrides "$node")" \
    --env="METADATA_URL=$METADATA_URL" --env="API_SERVICE_IP=$API_SERVICE_IP" \
    --env="INTERNET_URL=$INTERNET_URL" \
    --command -- sh -c "$PROBE_SCRIPT" probe "$node_ips" 2>&1) || true
  printf '%s\n' "$output" | grep -E '^(PASS|FAIL) ' | sed 's/^/    /' || true
  if printf '%s\n' "$output" | grep -q '^FAIL '; then
    failed=1
  fi
  if ! printf '%s\n' "$output" | grep -q '^DONE '; then
    echo "    FAIL the probe pod did not report; kubectl said:" >&2
    printf '%s\n' "$output" | sed 's/^/      /' >&2
    failed=1
  fi
done

if [ "$failed" = 0 ]; then
  echo "all checks passed"
else
  echo "some checks FAILED: the agents' NetworkPolicies do not hold (SECURITY.md T5-T7)" >&2
fi
exit "$failed"
