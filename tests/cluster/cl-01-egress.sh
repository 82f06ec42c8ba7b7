#!/usr/bin/env bash
# CL-01: measures what an agent pod can reach. infra/probe-netpol.sh measures its matrix (metadata service,
# Kubernetes API, every node's 6443/10250, the internet); this adds what only a cluster check needs (nodes'
# SSH, the control plane, NFS, another agent, the tailnet, DNS, Anthropic, GitHub), and measures both again
# after the owner restarts k3s-agent and reboots the node (rules went missing after restarts: k3d#1513).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-01-egress.sh [--node NAME] [--runtime-class NAME] [--tailnet-ip IP]
                                     [--answers LIST] [--help]

CL-01 egress matrix from an agent pod.
Pass: from pods that look like agents, the metadata service, the Kubernetes API, every node (22, 6443,
10250), the control plane, NFS, another agent pod and the tailnet are unreachable, while DNS,
api.anthropic.com:443 and github.com:443 answer; and the same after k3s-agent restarts and after a reboot.

Needs: kubectl, ./kubeconfig or $KUBECONFIG. For the restart and the reboot: a terminal (or --answers) and
a way to run commands on the node (`hetzner-k3s run`, or the Hetzner Cloud console).
Changes: short-lived pods in agentfarm-agents labelled agentfarm.dev/cluster-check=cl-01 (and
infra/probe-netpol.sh's own), deleted on exit. Restarting and rebooting are left to you: the script
prints the command and waits for the node.

  --node NAME           the node to probe from and to restart (default: the first agent node);
                        probe-netpol's matrix runs from every agent node at first
  --runtime-class NAME  gvisor (default), or kata-clh / kata-qemu (SKIP without a KVM node)
  --tailnet-ip IP       a 100.64.0.0/10 address that must stay unreachable (default 100.100.100.100)
EOF
  answers_help cl-01.restarted=y,cl-01.rebooted=n
  cat <<'EOF'
  --help                this text

Questions: cl-01.restarted (k3s-agent restarted on the node?), cl-01.rebooted (node rebooted?).
Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

NODE=
RUNTIME_CLASS=$DEFAULT_RUNTIME_CLASS
TAILNET_IP=100.100.100.100
while [ "$#" -gt 0 ]; do
  case "$1" in
    --node) require_value "$@"; NODE=$2; shift ;;
    --runtime-class) require_value "$@"; RUNTIME_CLASS=$2; shift ;;
    --tailnet-ip) require_value "$@"; TAILNET_IP=$2; shift ;;
    --answers) require_value "$@"; ANSWERS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

LISTENER=agentfarm-cl-01-listener
PROBE=agentfarm-cl-01-probe

# Every node's IPv4 addresses (internal and external), one a line.
node_addresses() {
  kubectl get nodes -o jsonpath='{range .items[*]}{range .status.addresses[*]}{.type}={.address}{"\n"}{end}{end}' |
    sed -n -E 's/^(InternalIP|ExternalIP)=([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/\2/p' | sort -u
}

# Prints the probe's targets as "want name url" triples, one a line: want is blocked or open.
targets() {
  local address service_ip pod_ip
  for address in $(node_addresses); do
    echo "blocked node-ssh-$address https://$address:22/"
  done
  service_ip=$(kubectl -n "$SYSTEM_NAMESPACE" get service "$CONTROL_PLANE_SERVICE" -o jsonpath='{.spec.clusterIP}')
  echo "blocked control-plane-service-$service_ip:80 http://$service_ip:80/"
  for pod_ip in $(kubectl -n "$SYSTEM_NAMESPACE" get pods -l "$CONTROL_PLANE_SELECTOR" -o jsonpath='{.items[*].status.podIP}'); do
    echo "blocked control-plane-pod-$pod_ip:8080 http://$pod_ip:8080/"
  done
  if kubectl get namespace "$NFS_NAMESPACE" >/dev/null 2>&1; then
    service_ip=$(kubectl -n "$NFS_NAMESPACE" get service "$NFS_SERVICE" -o jsonpath='{.spec.clusterIP}')
    echo "blocked nfs-service-$service_ip:2049 https://$service_ip:2049/"
    for pod_ip in $(kubectl -n "$NFS_NAMESPACE" get pods -l "app.kubernetes.io/name=$NFS_SERVICE" -o jsonpath='{.items[*].status.podIP}'); do
      echo "blocked nfs-pod-$pod_ip:2049 https://$pod_ip:2049/"
      echo "blocked nfs-pod-$pod_ip:111 https://$pod_ip:111/"
    done
  fi
  echo "blocked other-agent-pod-$LISTENER_IP:8080 http://$LISTENER_IP:8080/"
  echo "blocked tailnet-$TAILNET_IP:443 https://$TAILNET_IP:443/"
  echo "open api.anthropic.com:443 https://api.anthropic.com/"
  echo "open github.com:443 https://github.com/"
}

# The probe pod's script: for each "want name url" in its arguments, prints "RESULT want answer name".
# shellcheck disable=SC2016 # expanded by the pod's shell
PROBE_SCRIPT="$CONNECTS_FUNCTION"'
while [ "$#" -ge 3 ]; do
  echo "RESULT $1 $(connects "$3") $2"
  shift 3
done
echo DONE
'

# Whether the listener pod answers on its own address (so that "unreachable" means the policy, not a dead
# server).
listener_answers() {
  kubectl -n "$AGENTS_NAMESPACE" exec "$LISTENER" -- wget -q -O /dev/null -T 3 http://127.0.0.1:8080/ \
    >/dev/null 2>&1
}

# Makes sure "another agent" runs: a web server in a pod like an agent's, on another agent node when there
# is one. Sets LISTENER_IP.
ensure_listener() {
  local node=$NODE candidate attempt
  if [ "$(pod_phase "$LISTENER")" = Running ] && listener_answers; then
    LISTENER_IP=$(kubectl -n "$AGENTS_NAMESPACE" get pod "$LISTENER" -o jsonpath='{.status.podIP}')
    return
  fi
  kubectl -n "$AGENTS_NAMESPACE" delete pod "$LISTENER" --ignore-not-found --wait=true >/dev/null
  for candidate in $(agent_nodes); do
    if [ "$candidate" != "$NODE" ]; then
      node=$candidate
      break
    fi
  done
  POD_NODE=$node start_pod "$LISTENER" "$BUSYBOX_IMAGE" \
    'echo ok >/tmp/index.html && exec httpd -f -p 8080 -h /tmp'
  wait_for_pod_phase "$LISTENER" 180 Running || die 1 "the listener pod $LISTENER did not start"
  for attempt in 1 2 3 4 5; do
    if listener_answers; then
      LISTENER_IP=$(kubectl -n "$AGENTS_NAMESPACE" get pod "$LISTENER" -o jsonpath='{.status.podIP}')
      info "another agent: $LISTENER on $node at $LISTENER_IP:8080 (answers locally)"
      return
    fi
    sleep "$attempt"
  done
  die 1 "the listener pod $LISTENER does not answer on 127.0.0.1:8080 itself"
}

# Measures everything once; $1 says when, for the check names ("" at first).
measure() {
  local when=$1 probe_args=() status=0 output want answer name
  if [ -n "$when" ] || [ -n "$NODE_GIVEN" ]; then
    probe_args+=(--node "$NODE")
  fi
  echo "==> infra/probe-netpol.sh${when:+ ($when)}"
  bash "$REPO_ROOT/infra/probe-netpol.sh" ${probe_args[@]+"${probe_args[@]}"} --runtime-class "$RUNTIME_CLASS" 2>&1 |
    sed 's/^/    /' || status=$?
  case "$status" in
    0) pass "probe-netpol matrix${when:+ $when}" ;;
    1) fail "probe-netpol matrix${when:+ $when}" "see its FAIL lines above" ;;
    *) fail "probe-netpol matrix${when:+ $when}" "infra/probe-netpol.sh could not run (exit $status)" ;;
  esac

  echo "==> more targets from a pod on $NODE${when:+ ($when)}"
  # shellcheck disable=SC2046 # the targets are words: want, name, url
  output=$(POD_NODE=$NODE POD_RUNTIME_CLASS=$RUNTIME_CLASS POD_DEADLINE=600 \
    run_pod 600 "$PROBE" "$CURL_IMAGE" "$PROBE_SCRIPT" $(targets)) || true
  if ! printf '%s\n' "$output" | grep -q '^DONE$'; then
    fail "more targets${when:+ $when}" "the probe pod did not report; it said: $(printf '%s' "$output" | tail -n 5 | tr '\n' ' ')"
    return
  fi
  while read -r _ want answer name; do
    case "$want:$answer" in
      blocked:no) pass "$name unreachable${when:+ $when}" ;;
      blocked:*) fail "$name unreachable${when:+ $when}" "a connection was made" ;;
      open:yes) pass "$name reachable${when:+ $when}" ;;
      open:dns) fail "$name reachable${when:+ $when}" "the name did not resolve (DNS to kube-dns blocked?)" ;;
      open:*) fail "$name reachable${when:+ $when}" "no connection" ;;
    esac
    if [ "$name" = github.com:443 ] && [ "$answer" != dns ]; then
      pass "DNS resolves github.com${when:+ $when}"
    fi
  done < <(printf '%s\n' "$output" | grep '^RESULT ')
}

start_check CL-01
require_kubectl
if ! runtime_class_usable "$RUNTIME_CLASS"; then
  skip "egress matrix under $RUNTIME_CLASS" "$WHY_NOT"
  finish_checks
fi
NODE_GIVEN=$NODE
if [ -z "$NODE" ]; then
  NODE=$(agent_nodes)
  NODE=${NODE%% *}
fi
if [ -z "$NODE" ]; then
  die 2 "no node is labelled $AGENT_NODE_LABEL"
fi

ensure_listener
measure ""

answer=$(owner_answer restarted "Restart k3s-agent on $NODE now, e.g.
  hetzner-k3s run --config infra/site/cluster.yaml --instance $NODE --command 'systemctl restart k3s-agent'
Done?")
if [ "$answer" = y ]; then
  sleep 20
  deadline=$((SECONDS + 600))
  until node_ready "$NODE" || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 5
  done
  measure "after k3s-agent restart"
else
  skip "egress matrix after k3s-agent restart" "not restarted (answer cl-01.restarted=y once it is)"
fi

answer=$(owner_answer rebooted "Reboot $NODE now (Hetzner Cloud console → the server → Power → Reboot, or
  hetzner-k3s run --config infra/site/cluster.yaml --instance $NODE --command reboot)
Done?")
if [ "$answer" = y ]; then
  sleep 30
  deadline=$((SECONDS + 900))
  until node_ready "$NODE" || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 5
  done
  ensure_listener
  measure "after a reboot"
else
  skip "egress matrix after a reboot" "not rebooted (answer cl-01.rebooted=y once it is)"
fi

finish_checks
