#!/usr/bin/env bash
# CL-02: the Hetzner metadata service and the tokens it could hand out. From a pod that looks like an agent
# on every agent node, the metadata endpoints must not connect; from a short-lived admin pod on each node's
# own network, the node's user-data must hold no k3s server token and no Hetzner API token. Only which
# kinds of token appear is printed, never the user-data itself.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-02-metadata.sh [--node NAME] [--runtime-class NAME] [--help]

CL-02 metadata and token exposure audit.
Pass: from an agent pod, http://169.254.169.254/hetzner/v1/userdata and /hetzner/v1/metadata do not
connect; every node's user-data, with its write_files decoded (gzip+base64, as hetzner-k3s ships its
scripts), holds no k3s server token (K3S_TOKEN or --token other than an agent token K10…::node:…), no
HCLOUD_TOKEN and nothing token-shaped (k3s, Anthropic, GitHub, Tailscale or Hetzner token formats).

Needs: kubectl, ./kubeconfig or $KUBECONFIG (cluster admin).
Changes: short-lived pods labelled agentfarm.dev/cluster-check=cl-02, deleted on exit: one like an agent
per agent node in agentfarm-agents, and one per node in kube-system on the node's network (hostNetwork,
non-root, no capabilities: the only way to ask the metadata service as the node does). The user-data is
read inside that pod and never printed.

  --node NAME           only this node
  --runtime-class NAME  of the agent pods: gvisor (default), or kata-clh / kata-qemu
  --help                this text

Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

ONLY_NODE=
RUNTIME_CLASS=$DEFAULT_RUNTIME_CLASS
while [ "$#" -gt 0 ]; do
  case "$1" in
    --node) require_value "$@"; ONLY_NODE=$2; shift ;;
    --runtime-class) require_value "$@"; RUNTIME_CLASS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

METADATA_URLS="http://169.254.169.254/hetzner/v1/userdata http://169.254.169.254/hetzner/v1/metadata"

# The agent pod's script: "RESULT yes|no URL" for each URL in its arguments.
# shellcheck disable=SC2016 # expanded by the pod's shell
AGENT_SCRIPT="$CONNECTS_FUNCTION"'
for url in "$@"; do
  echo "RESULT $(connects "$url") $url"
done
echo DONE
'

# The admin pod's script: reads the node's user-data, decodes its write_files, and prints only what kinds
# of token it holds (tests/cluster/userdata-audit.sh; the test `cl_02_finds_tokens_inside_encoded_user_data`
# runs it on user-data shaped like hetzner-k3s's).
USERDATA_SCRIPT=$(cat "$(dirname "${BASH_SOURCE[0]}")/userdata-audit.sh")

start_check CL-02
require_kubectl
if ! runtime_class_usable "$RUNTIME_CLASS"; then
  skip "metadata from an agent pod under $RUNTIME_CLASS" "$WHY_NOT"
else
  for node in ${ONLY_NODE:-$(agent_nodes)}; do
    # shellcheck disable=SC2086 # the URLs are words
    output=$(POD_NODE=$node POD_RUNTIME_CLASS=$RUNTIME_CLASS \
      run_pod 300 "agentfarm-cl-02-agent-$node" "$CURL_IMAGE" "$AGENT_SCRIPT" $METADATA_URLS 2>&1) || true
    if ! printf '%s\n' "$output" | grep -q '^DONE$'; then
      fail "agent pod on $node" "it did not report: $(printf '%s' "$output" | tail -n 3 | tr '\n' ' ')"
      continue
    fi
    while read -r _ answer url; do
      case "$answer" in
        no) pass "agent pod on $node cannot connect to $url" ;;
        *) fail "agent pod on $node cannot connect to $url" "a connection was made" ;;
      esac
    done < <(printf '%s\n' "$output" | grep '^RESULT ')
  done
fi

for node in ${ONLY_NODE:-$(kubectl get nodes -o jsonpath='{.items[*].metadata.name}')}; do
  output=$(POD_NAMESPACE=kube-system POD_HOST_NETWORK=true POD_RUNTIME_CLASS='' POD_NODE=$node \
    run_pod 180 "agentfarm-cl-02-userdata-$node" "$CURL_IMAGE" "$USERDATA_SCRIPT" 2>&1) || true
  verdict=$(printf '%s\n' "$output" | grep '^USERDATA ' | head -n 1 || true)
  case "$verdict" in
    "")
      skip "user-data of $node" "the admin pod did not report: $(printf '%s' "$output" | tail -n 3 | tr '\n' ' ')"
      continue
      ;;
    "USERDATA unreadable")
      skip "user-data of $node" "the metadata service did not answer the node (not a Hetzner Cloud server?)"
      continue
      ;;
  esac
  case "$verdict" in
    *hcloud=yes*) fail "no Hetzner API token in the user-data of $node" "HCLOUD_TOKEN is there" ;;
    *) pass "no Hetzner API token in the user-data of $node" ;;
  esac
  case "$verdict" in
    *server_token=yes*) fail "no k3s server token in the user-data of $node" "a K10…::server:… token is there" ;;
    *other_token=yes*)
      fail "no k3s server token in the user-data of $node" \
        "a k3s token that is not an agent token (K10…::node:…) is there: treat it as the server token"
      ;;
    *agent_token=yes*) pass "no k3s server token in the user-data of $node (an agent token only)" ;;
    *) pass "no k3s server token in the user-data of $node" ;;
  esac
  case "$verdict" in
    *shaped=none*)
      files=$(printf '%s\n' "$verdict" | sed -n 's/.* files=\([0-9]*\) .*/\1/p')
      pass "nothing token-shaped in the user-data of $node ($files write_files entries decoded)"
      ;;
    *) fail "nothing token-shaped in the user-data of $node" "found ${verdict##*shaped=} (kinds, not values)" ;;
  esac
done

finish_checks
