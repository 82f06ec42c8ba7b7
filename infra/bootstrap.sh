#!/usr/bin/env bash
# Installs agentfarm on a cluster made with `hetzner-k3s create --config infra/site/cluster.yaml`: the Tailscale
# operator, csi-driver-nfs and kata-deploy when they are wanted, a site overlay (infra/site) over
# manifests/overlays/hetzner, the Secrets, then waits for the control plane and runs `agentfarm doctor`.
# Every step is safe to re-run (helm upgrade --install, kubectl apply, server-side applied Secrets): run it
# again after changing an input, after new nodes joined, or to finish a run that stopped half way.
#
# Usage: infra/bootstrap.sh [--dry-run] [--help]     (see --help for the inputs)
#
# Secrets never reach the command line of any process, a file, or the output: values go from an
# environment variable or a file through a pipe (printf is a shell builtin) into kubectl.

set -euo pipefail

# Builtins only up to the plan, so that --dry-run works with nothing but bash on PATH.
SCRIPT_DIR=${BASH_SOURCE[0]%/*}
if [ "$SCRIPT_DIR" = "${BASH_SOURCE[0]}" ]; then
  SCRIPT_DIR=.
fi
INFRA_DIR=$(cd "$SCRIPT_DIR" && pwd)
REPO_ROOT=$(cd "$INFRA_DIR/.." && pwd)
SITE_DIR=$INFRA_DIR/site

# Plain KEY=value pins (nothing for shellcheck to check in it, so it is not followed).
# shellcheck source=/dev/null
. "$INFRA_DIR/versions.env"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$INFRA_DIR/lib.sh"

usage() {
  cat <<'EOF'
Usage: infra/bootstrap.sh [--dry-run] [--help]

Installs agentfarm on the cluster in ./kubeconfig (as `hetzner-k3s create --config infra/site/cluster.yaml`
writes it; run from the repository root) or in $KUBECONFIG. Safe to re-run.

  --dry-run   print the plan (steps, which prerequisites and inputs are present) and change nothing;
              contacts no cluster and needs neither kubectl nor helm
  --help      this text

Inputs (environment variables; names only are ever printed):
  AGENTFARM_TAILNET             required: the tailnet's DNS name, e.g. tail1234.ts.net
  AGENTFARM_HOSTNAME            the machine name on the tailnet (default: agentfarm); the app is served at
                                https://$AGENTFARM_HOSTNAME.$AGENTFARM_TAILNET
  AGENTFARM_PUSH_CONTACT        required: the Web Push contact, mailto:you@example.com or an https URL
  AGENTFARM_ALLOWED_LOGINS      required: your Tailscale login (Admin console, Users), e.g. you@example.com
                                or you@github; comma-separated for more. Only these users get in
  AGENTFARM_CONTROL_PLANE_IMAGE required: your control-plane image by digest,
                                e.g. ghcr.io/you/agentfarm-control-plane@sha256:… (.github/workflows/images.yml
                                prints both lines)
  AGENTFARM_AGENT_IMAGE         required: your agent image by digest, e.g. ghcr.io/you/agentfarm-agent@sha256:…
  AGENTFARM_REGISTRY_USER       only for private images: the registry user (on GHCR, your GitHub login), with
  AGENTFARM_REGISTRY_TOKEN      a token that may only read packages (GitHub: classic PAT, scope read:packages),
  AGENTFARM_REGISTRY_TOKEN_FILE or a file holding it; the nodes pull with it (Secret registry-pull)
  CLAUDE_CODE_OAUTH_TOKEN       the agents' Claude token (`claude setup-token`), or
  CLAUDE_TOKEN_FILE             a file holding it; required unless the Secret claude-token exists
  GITHUB_TOKEN                  the agents' GitHub token (a fine-grained PAT), or
  GITHUB_TOKEN_FILE             a file holding it; required unless the Secret github-token exists
  TS_OAUTH_CLIENT_ID            the Tailscale OAuth client for the operator, with
  TS_OAUTH_CLIENT_SECRET        its secret; required unless the Secret tailscale/operator-oauth exists
  VAPID_PRIVATE_KEY_FILE        optional: the Web Push private key (base64url P-256 scalar); without it an
                                existing Secret vapid-keys is kept, else a new key is generated (openssl)
  AGENTFARM_SHARED_CLAUDE_HOME  1 to add the opt-in shared ~/.claude volume (csi-driver-nfs, NFS server);
                                read manifests/README.md "shared-claude-home: risks" first
  AGENTFARM_NFS_IMAGE           with the shared volume: the NFS server's image by digest,
                                docker.io/itsthenetwork/nfs-server-alpine:12@sha256:…
  KUBECONFIG                    the cluster (default: ./kubeconfig)

Exit status: 0 done, 1 a step failed (doctor included), 2 missing prerequisites or inputs.
EOF
}

DRY_RUN=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    *) help_or_unknown "$arg" ;;
  esac
done

# --- Inputs (names and non-secret values only; tokens stay in their variables) ---------------------------
AF_HOST=${AGENTFARM_HOSTNAME:-agentfarm}
AF_TAILNET=${AGENTFARM_TAILNET:-}
AF_PUSH_CONTACT=${AGENTFARM_PUSH_CONTACT:-}
AF_ALLOWED_LOGINS=${AGENTFARM_ALLOWED_LOGINS:-}
AF_SHARED_HOME=${AGENTFARM_SHARED_CLAUDE_HOME:-0}
AF_CONTROL_PLANE_IMAGE=${AGENTFARM_CONTROL_PLANE_IMAGE:-}
AF_AGENT_IMAGE=${AGENTFARM_AGENT_IMAGE:-}
AF_REGISTRY_USER=${AGENTFARM_REGISTRY_USER:-}
AF_NFS_IMAGE=${AGENTFARM_NFS_IMAGE:-}
PUBLIC_URL="https://$AF_HOST.${AF_TAILNET:-<AGENTFARM_TAILNET>}"

AGENTS_NS=agentfarm-agents
SYSTEM_NS=agentfarm-system
AGENT_LABEL=agentfarm.dev/role=agents
KVM_LABEL=agentfarm.dev/kvm=true
FIELD_MANAGER=agentfarm-bootstrap
# Set by step_kata_deploy when a KVM node exists.
KATA=0
# The image the shared-claude-home component names, pinned by the site (AGENTFARM_NFS_IMAGE).
NFS_IMAGE=itsthenetwork/nfs-server-alpine
# The placeholders the manifests name (manifests/base): no registry serves them.
CONTROL_PLANE_PLACEHOLDER=agentfarm.invalid/agentfarm-control-plane
AGENT_PLACEHOLDER=agentfarm.invalid/agentfarm-agent
# The docker-registry Secret made from AGENTFARM_REGISTRY_USER/_TOKEN, in both namespaces.
PULL_SECRET=registry-pull
CSI_NODE=hcloud-csi-node
CSI_NODE_PATCH=$INFRA_DIR/patches/hcloud-csi-node-host-network.yaml

# --- Helpers ---------------------------------------------------------------------------------------------
is_set() { [ -n "${!1:-}" ]; }
shared_home() { [ "$AF_SHARED_HOME" = 1 ]; }

secret_exists() { kubectl -n "$1" get secret "$2" -o name >/dev/null 2>&1; }

# Tokens pasted into files or variables often carry a trailing newline; none of these values has spaces.
strip() { tr -d ' \t\r\n'; }

# Reads the value from stdin and applies Secret $2 in namespace $1 with that single key $3 (and type $4, if
# given). Server-side apply: a client-side apply would copy the value into the last-applied-configuration
# annotation.
apply_secret_from_stdin() {
  kubectl -n "$1" create secret generic "$2" --from-file="$3=/dev/stdin" ${4:+"--type=$4"} \
    --dry-run=client -o yaml |
    kubectl apply --server-side --field-manager="$FIELD_MANAGER" --force-conflicts -f - >/dev/null
  info "Secret $1/$2 (key $3) applied"
}

# The registry token, from AGENTFARM_REGISTRY_TOKEN or the file AGENTFARM_REGISTRY_TOKEN_FILE names.
registry_token() {
  if is_set AGENTFARM_REGISTRY_TOKEN; then
    printf '%s' "$AGENTFARM_REGISTRY_TOKEN" | strip
  else
    strip <"$AGENTFARM_REGISTRY_TOKEN_FILE"
  fi
}

# Prints the docker config JSON that lets the nodes pull from the images' registry as
# AGENTFARM_REGISTRY_USER; the token goes from its variable or file through pipes only.
registry_config() {
  printf '{"auths":{"%s":{"auth":"' "$(registry_of "$AF_CONTROL_PLANE_IMAGE")"
  { printf '%s:' "$AF_REGISTRY_USER" && registry_token; } | base64 | tr -d '\n'
  printf '"}}}'
}

# Whether the nodes pull with the Secret registry-pull: credentials were given now, or on an earlier run.
pulls_with_secret() {
  [ -n "$AF_REGISTRY_USER" ] || secret_exists "$SYSTEM_NS" "$PULL_SECRET"
}

# Applies the owner's token Secret $3 (key `token`) in the control plane's namespace (only the control plane
# mounts it; agents get a per-run capability) from the variable named $1, else from the file the variable
# named $2 names; keeps the existing Secret when neither is set.
apply_token_secret() {
  if is_set "$1"; then
    printf '%s' "${!1}" | strip | apply_secret_from_stdin "$SYSTEM_NS" "$3" token
  elif is_set "$2"; then
    strip <"${!2}" | apply_secret_from_stdin "$SYSTEM_NS" "$3" token
  else
    info "Secret $SYSTEM_NS/$3 kept"
  fi
}

# The VAPID private key: the 32-byte P-256 scalar, base64url without padding (43 characters), as in
# manifests/secrets/vapid-keys.example.yaml (the DER ECPrivateKey holds it at offset 7). Printed only into
# the caller's command substitution.
generate_vapid_key() {
  openssl ecparam -name prime256v1 -genkey -noout |
    openssl ec -outform DER 2>/dev/null |
    tail -c +8 | head -c 32 |
    openssl base64 -A | tr '+/' '-_' | tr -d '='
}

# Problems with image reference $2 (named by variable $1), one per line with two spaces in front; empty when
# it is a fully qualified image of the site's own, pinned by digest.
image_problems() {
  local re='^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$'
  if [ -z "$2" ]; then
    printf '\n  %s' "$1 is not set: the image by digest, REGISTRY/NAME[:TAG]@sha256:… (the images workflow" \
      "prints yours; infra/README.md, step 1)"
  elif [[ $2 == ghcr.io/agentfarm/* || $2 == agentfarm.invalid/* ]]; then
    printf '\n  %s' "$1 names a placeholder that nobody here owns: build and push your own images first"
  elif ! [[ $2 =~ $re ]]; then
    printf '\n  %s' "$1 must be REGISTRY/NAME[:TAG]@sha256:<64 hex> (pinned by digest, so that nobody can move" \
      "what runs under a tag), e.g. ghcr.io/you/agentfarm-agent@sha256:…; docker buildx imagetools inspect" \
      "IMAGE:TAG prints a digest"
  fi
}

# The registry host of image reference $1.
registry_of() { printf '%s' "${1%%/*}"; }

valid_vapid_key() {
  local re='^[A-Za-z0-9_-]{43}$'
  [[ $1 =~ $re ]]
}

# --- The steps: one list for the plan and the run --------------------------------------------------------
STEPS="prerequisites inputs node_labels csi_node csi_driver_nfs tailscale_operator kata_deploy site_overlay namespaces secrets apply rollout doctor next_steps"

describe() {
  case "$1" in
    prerequisites)
      echo "checking prerequisites: $(cluster_tools_summary)," \
        "openssl $(present openssl) (only to generate a VAPID key); then whether the cluster answers"
      ;;
    inputs)
      local set_names="" missing_names="" name
      for name in AGENTFARM_TAILNET AGENTFARM_PUSH_CONTACT AGENTFARM_ALLOWED_LOGINS AGENTFARM_HOSTNAME \
        AGENTFARM_CONTROL_PLANE_IMAGE AGENTFARM_AGENT_IMAGE AGENTFARM_REGISTRY_USER AGENTFARM_REGISTRY_TOKEN \
        AGENTFARM_REGISTRY_TOKEN_FILE CLAUDE_CODE_OAUTH_TOKEN CLAUDE_TOKEN_FILE GITHUB_TOKEN GITHUB_TOKEN_FILE \
        TS_OAUTH_CLIENT_ID TS_OAUTH_CLIENT_SECRET VAPID_PRIVATE_KEY_FILE AGENTFARM_SHARED_CLAUDE_HOME; do
        if is_set "$name"; then
          set_names="$set_names $name"
        else
          missing_names="$missing_names $name"
        fi
      done
      echo "checking inputs: set:${set_names:- none}; not set:${missing_names:- none}" \
        "(tokens not given keep their existing Secrets)"
      ;;
    node_labels) echo "checking that nodes carry $AGENT_LABEL (hetzner-k3s sets it from the pool labels)" ;;
    csi_node)
      echo "running the Hetzner CSI node plugin (kube-system/$CSI_NODE) on the host network, where the" \
        "nodes' metadata rule lets it read its server ID (infra/patches/${CSI_NODE_PATCH##*/})"
      ;;
    csi_driver_nfs)
      if shared_home; then
        echo "installing csi-driver-nfs (chart $CSI_DRIVER_NFS_CHART_VERSION) into kube-system"
      else
        echo "skipping csi-driver-nfs (shared-claude-home not opted in: AGENTFARM_SHARED_CLAUDE_HOME is not 1)"
      fi
      ;;
    tailscale_operator)
      echo "installing the Tailscale operator (chart $TAILSCALE_OPERATOR_CHART_VERSION) into tailscale," \
        "with the Secret operator-oauth"
      ;;
    kata_deploy)
      echo "installing kata-deploy (chart $KATA_DEPLOY_CHART_VERSION) into kube-system if a node carries" \
        "$KVM_LABEL (then the site overlay adds the RuntimeClasses kata-clh and kata-qemu)"
      ;;
    site_overlay)
      local extra=""
      if shared_home; then extra=" + shared-claude-home"; fi
      echo "writing the site overlay infra/site (manifests/overlays/hetzner$extra; $PUBLIC_URL;" \
        "the allowed Tailscale logins; your images by digest; each node's public IPv4 excepted from the" \
        "agents' egress) and rendering it"
      ;;
    namespaces) echo "applying the namespaces $SYSTEM_NS and $AGENTS_NS" ;;
    secrets)
      echo "applying the Secrets claude-token, github-token and vapid-keys ($SYSTEM_NS)," \
        "and $PULL_SECRET (both) when AGENTFARM_REGISTRY_USER is set"
      ;;
    apply) echo "applying the site overlay (kubectl apply -k infra/site)" ;;
    rollout) echo "waiting for deploy/agentfarm-control-plane in $SYSTEM_NS to roll out (up to 5m)" ;;
    doctor) echo "running agentfarm doctor in the control plane" ;;
    next_steps) echo "next steps: open $PUBLIC_URL on your phone" ;;
  esac
}

step_prerequisites() {
  local missing
  missing=$(missing_cluster_tools)
  if [ -n "$missing" ]; then
    die 2 "missing prerequisites:$missing"
  fi
  require_cluster
  info "cluster reachable: $(kubectl get nodes -o name | wc -l | tr -d ' ') nodes"
  if [ -z "${VAPID_PRIVATE_KEY_FILE:-}" ] && ! secret_exists "$SYSTEM_NS" vapid-keys && ! have openssl; then
    die 2 "openssl is needed to generate the VAPID key (no VAPID_PRIVATE_KEY_FILE, no Secret vapid-keys):" \
      "install it (Debian/Ubuntu: apt-get install openssl; macOS: it ships with the system)"
  fi
}

step_inputs() {
  local problems="" re value
  re='^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
  if ! [[ $AF_HOST =~ $re ]]; then
    problems="$problems
  AGENTFARM_HOSTNAME must be one DNS label (lowercase letters, digits, '-'), e.g. agentfarm"
  fi
  re='^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$'
  if [ -z "$AF_TAILNET" ]; then
    problems="$problems
  AGENTFARM_TAILNET is not set: the tailnet DNS name from the Tailscale admin console (DNS page), e.g. tail1234.ts.net"
  elif ! [[ $AF_TAILNET =~ $re ]]; then
    problems="$problems
  AGENTFARM_TAILNET must be the tailnet's DNS name, like tail1234.ts.net (without https://)"
  fi
  re='^(mailto:|https://)[^[:space:]"\\]+$'
  if [ -z "$AF_PUSH_CONTACT" ]; then
    problems="$problems
  AGENTFARM_PUSH_CONTACT is not set: mailto:you@example.com (push services contact it about problems)"
  elif ! [[ $AF_PUSH_CONTACT =~ $re ]]; then
    problems="$problems
  AGENTFARM_PUSH_CONTACT must start with mailto: or https:// and contain no spaces or quotes"
  fi
  # Logins as the server accepts them, and nothing that would need quoting in the settings patch.
  re='^[A-Za-z0-9._%+-]+@[A-Za-z0-9._-]+(,[A-Za-z0-9._%+-]+@[A-Za-z0-9._-]+)*$'
  if [ -z "$AF_ALLOWED_LOGINS" ]; then
    problems="$problems
  AGENTFARM_ALLOWED_LOGINS is not set: your Tailscale login, e.g. you@example.com (Admin console, Users)"
  elif ! [[ $AF_ALLOWED_LOGINS =~ $re ]]; then
    problems="$problems
  AGENTFARM_ALLOWED_LOGINS must be Tailscale logins like you@example.com or you@github, comma-separated, no spaces"
  fi
  problems="$problems$(image_problems AGENTFARM_CONTROL_PLANE_IMAGE "$AF_CONTROL_PLANE_IMAGE")"
  problems="$problems$(image_problems AGENTFARM_AGENT_IMAGE "$AF_AGENT_IMAGE")"
  if shared_home; then
    problems="$problems$(image_problems AGENTFARM_NFS_IMAGE "$AF_NFS_IMAGE")"
  fi
  if is_set AGENTFARM_REGISTRY_TOKEN || is_set AGENTFARM_REGISTRY_TOKEN_FILE || [ -n "$AF_REGISTRY_USER" ]; then
    if [ -z "$AF_REGISTRY_USER" ] || ! { is_set AGENTFARM_REGISTRY_TOKEN || is_set AGENTFARM_REGISTRY_TOKEN_FILE; }; then
      problems="$problems
  AGENTFARM_REGISTRY_USER and AGENTFARM_REGISTRY_TOKEN (or _FILE) go together: set both, or neither for public images"
    elif [ "$(registry_of "$AF_CONTROL_PLANE_IMAGE")" != "$(registry_of "$AF_AGENT_IMAGE")" ]; then
      problems="$problems
  the registry credential is for one registry: put both images in the same one"
    elif is_set AGENTFARM_REGISTRY_TOKEN_FILE && { ! [ -r "$AGENTFARM_REGISTRY_TOKEN_FILE" ] ||
      [ -z "$(strip <"$AGENTFARM_REGISTRY_TOKEN_FILE")" ]; }; then
      problems="$problems
  AGENTFARM_REGISTRY_TOKEN_FILE: not a readable, non-empty file"
    fi
  fi
  case "$AF_SHARED_HOME" in
    0 | 1) ;;
    *) problems="$problems
  AGENTFARM_SHARED_CLAUDE_HOME must be 1 (opt in) or 0" ;;
  esac

  local spec var file secret_ns secret_name
  for spec in CLAUDE_CODE_OAUTH_TOKEN:CLAUDE_TOKEN_FILE:$SYSTEM_NS:claude-token \
    GITHUB_TOKEN:GITHUB_TOKEN_FILE:$SYSTEM_NS:github-token; do
    IFS=: read -r var file secret_ns secret_name <<EOF
$spec
EOF
    if is_set "$var"; then
      :
    elif is_set "$file"; then
      if ! [ -r "${!file}" ] || [ -z "$(strip <"${!file}")" ]; then
        problems="$problems
  $file: not a readable, non-empty file"
      fi
    elif secret_exists "$secret_ns" "$secret_name"; then
      info "$var / $file not set: keeping the existing Secret $secret_ns/$secret_name"
    else
      problems="$problems
  $var (or $file) is not set and the Secret $secret_ns/$secret_name does not exist yet"
    fi
  done

  if is_set TS_OAUTH_CLIENT_ID && is_set TS_OAUTH_CLIENT_SECRET; then
    :
  elif is_set TS_OAUTH_CLIENT_ID || is_set TS_OAUTH_CLIENT_SECRET; then
    problems="$problems
  TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET go together: set both"
  elif secret_exists tailscale operator-oauth; then
    info "TS_OAUTH_CLIENT_ID / TS_OAUTH_CLIENT_SECRET not set: keeping the existing Secret tailscale/operator-oauth"
  else
    problems="$problems
  TS_OAUTH_CLIENT_ID and TS_OAUTH_CLIENT_SECRET are not set and the Secret tailscale/operator-oauth does not
  exist: create a Tailscale OAuth client (write scopes Devices Core, Auth Keys, Services; tag tag:k8s-operator)"
  fi

  if is_set VAPID_PRIVATE_KEY_FILE; then
    value=""
    if [ -r "$VAPID_PRIVATE_KEY_FILE" ]; then
      value=$(strip <"$VAPID_PRIVATE_KEY_FILE")
    fi
    if ! valid_vapid_key "$value"; then
      problems="$problems
  VAPID_PRIVATE_KEY_FILE must hold a base64url P-256 private key (43 characters; see manifests/secrets/vapid-keys.example.yaml)"
    fi
  fi

  if [ -n "$problems" ]; then
    die 2 "missing or invalid inputs (see infra/bootstrap.sh --help):$problems"
  fi
  info "public URL: $PUBLIC_URL; shared-claude-home: $(if shared_home; then echo on; else echo off; fi)"
}

step_node_labels() {
  local nodes
  nodes=$(kubectl get nodes -l "$AGENT_LABEL" -o name)
  if [ -z "$nodes" ]; then
    warn "no node carries $AGENT_LABEL: agents will stay Pending. hetzner-k3s sets it from the pool" \
      "labels in infra/cluster.yaml; for a node joined by hand: kubectl label node NAME $AGENT_LABEL"
  else
    info "$(printf '%s\n' "$nodes" | wc -l | tr -d ' ') agent nodes (gVisor is checked by agentfarm doctor)"
  fi
}

step_csi_node() {
  if ! kubectl -n kube-system get daemonset "$CSI_NODE" -o name >/dev/null 2>&1; then
    warn "no DaemonSet kube-system/$CSI_NODE (addons.csi_driver in cluster.yaml): the control plane's" \
      "volume needs the Hetzner CSI driver"
    return 0
  fi
  kubectl -n kube-system patch daemonset "$CSI_NODE" --type strategic --patch-file "$CSI_NODE_PATCH" |
    sed 's/^/    /'
  kubectl -n kube-system rollout status daemonset "$CSI_NODE" --timeout=5m
}

step_csi_driver_nfs() {
  if ! shared_home; then
    info "skipped"
    return 0
  fi
  helm upgrade --install csi-driver-nfs csi-driver-nfs \
    --repo "$CSI_DRIVER_NFS_CHART_REPO" --version "$CSI_DRIVER_NFS_CHART_VERSION" \
    --namespace kube-system --values "$INFRA_DIR/helm/csi-driver-nfs.yaml" --wait --timeout 10m
}

step_tailscale_operator() {
  kubectl create namespace tailscale --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  if is_set TS_OAUTH_CLIENT_ID; then
    # Two keys, so an env file on stdin rather than --from-file=/dev/stdin.
    printf 'client_id=%s\nclient_secret=%s\n' "$TS_OAUTH_CLIENT_ID" "$TS_OAUTH_CLIENT_SECRET" |
      kubectl -n tailscale create secret generic operator-oauth --from-env-file=/dev/stdin \
        --dry-run=client -o yaml |
      kubectl apply --server-side --field-manager="$FIELD_MANAGER" --force-conflicts -f - >/dev/null
    info "Secret tailscale/operator-oauth (keys client_id, client_secret) applied"
  fi
  helm upgrade --install tailscale-operator tailscale-operator \
    --repo "$TAILSCALE_OPERATOR_CHART_REPO" --version "$TAILSCALE_OPERATOR_CHART_VERSION" \
    --namespace tailscale --create-namespace --values "$INFRA_DIR/helm/tailscale-operator.yaml" \
    --wait --timeout 10m
}

step_kata_deploy() {
  local nodes
  nodes=$(kubectl get nodes -l "$KVM_LABEL" -o name)
  if [ -z "$nodes" ]; then
    info "no node carries $KVM_LABEL: skipped (agents run under gVisor)"
    return 0
  fi
  helm upgrade --install kata-deploy "$KATA_DEPLOY_CHART" --version "$KATA_DEPLOY_CHART_VERSION" \
    --namespace kube-system --values "$INFRA_DIR/helm/kata-deploy.yaml" --wait --timeout 15m
  KATA=1
}

step_site_overlay() {
  local addresses address ips="" re='^[0-9]{1,3}(\.[0-9]{1,3}){3}$'
  addresses=$(kubectl get nodes \
    -o jsonpath='{range .items[*]}{range .status.addresses[?(@.type=="ExternalIP")]}{.address}{"\n"}{end}{end}')
  # IPv4 only: pods have no IPv6 route in this cluster.
  for address in $(printf '%s\n' "$addresses" | sort -u); do
    if [[ $address =~ $re ]]; then
      ips="$ips $address"
    fi
  done
  if [ -z "$ips" ]; then
    warn "no node has an ExternalIP address: the agents' egress policy gets no node exceptions"
  fi

  # With shared-claude-home: the addresses a node's NFS mount arrives from at the NFS server. The kubelet
  # mounts through the Service's ClusterIP from the host network; kube-proxy masquerades that to the
  # address of the interface towards the server's pod: the node's cni0 gateway (.1 of its pod range) when
  # the pod runs there, its flannel interface (.0 of its pod range) when it runs on another node. Never a
  # pod's own address (host-local hands out .2 and up), and never the nodes' private network.
  local cidr network nfs_sources="" account
  if shared_home; then
    for cidr in $(kubectl get nodes -o jsonpath='{range .items[*]}{.spec.podCIDR}{"\n"}{end}' | sort -u); do
      network=${cidr%/*}
      if [[ $network =~ $re ]] && [ "${network##*.}" = 0 ]; then
        nfs_sources="$nfs_sources $network/32 ${network%.*}.1/32"
      fi
    done
    if [ -z "$nfs_sources" ]; then
      warn "no node has a /24 pod range (spec.podCIDR): the NFS server admits no mount"
    fi
  fi

  mkdir -p "$SITE_DIR"
  rm -f "$SITE_DIR/kustomization.yaml" "$SITE_DIR/settings-patch.yaml" "$SITE_DIR/ingress-patch.yaml" \
    "$SITE_DIR/node-ips-patch.yaml" "$SITE_DIR/nfs-sources-patch.yaml" "$SITE_DIR/pull-secret-patch.yaml" \
    "$SITE_DIR/claude-login.yaml"
  # Generated per cluster and never committed (it names the tailnet, the contact and the images).
  printf '*\n' >"$SITE_DIR/.gitignore"

  {
    echo "# Generated by infra/bootstrap.sh for one cluster; re-run it instead of editing. Not committed."
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - ../../manifests/overlays/hetzner"
    if shared_home || [ "$KATA" = 1 ]; then
      echo "components:"
    fi
    if shared_home; then
      echo "  - ../../manifests/components/shared-claude-home"
    fi
    if [ "$KATA" = 1 ]; then
      echo "  - ../../manifests/components/kata"
    fi
    echo "images:"
    echo "  - name: $CONTROL_PLANE_PLACEHOLDER"
    echo "    newName: ${AF_CONTROL_PLANE_IMAGE%%@*}"
    echo "    digest: ${AF_CONTROL_PLANE_IMAGE#*@}"
    if shared_home; then
      echo "  - name: $NFS_IMAGE"
      echo "    newName: ${AF_NFS_IMAGE%%@*}"
      echo "    digest: ${AF_NFS_IMAGE#*@}"
    fi
    echo "patches:"
    echo "  - path: settings-patch.yaml"
    if [ "$AF_HOST" != agentfarm ]; then
      echo "  - path: ingress-patch.yaml"
      echo "    target:"
      echo "      kind: Ingress"
      echo "      name: agentfarm"
      echo "      namespace: $SYSTEM_NS"
    fi
    if [ -n "$ips" ]; then
      echo "  - path: node-ips-patch.yaml"
      echo "    target:"
      echo "      group: networking.k8s.io"
      echo "      version: v1"
      echo "      kind: NetworkPolicy"
      echo "      name: allow-https-internet"
      echo "      namespace: $AGENTS_NS"
    fi
    if [ -n "$nfs_sources" ]; then
      echo "  - path: nfs-sources-patch.yaml"
      echo "    target:"
      echo "      group: networking.k8s.io"
      echo "      version: v1"
      echo "      kind: NetworkPolicy"
      echo "      name: nfs-server"
      echo "      namespace: agentfarm-nfs"
    fi
    if pulls_with_secret; then
      for account in "$SYSTEM_NS/agentfarm-control-plane" "$AGENTS_NS/default"; do
        echo "  - path: pull-secret-patch.yaml"
        echo "    target:"
        echo "      version: v1"
        echo "      kind: ServiceAccount"
        echo "      name: ${account#*/}"
        echo "      namespace: ${account%/*}"
      done
    fi
  } >"$SITE_DIR/kustomization.yaml"

  {
    echo "# The site's public URL (the Tailscale Ingress name), Web Push contact, allowed Tailscale logins and"
    echo "# agent image (by digest)."
    echo "apiVersion: v1"
    echo "kind: ConfigMap"
    echo "metadata:"
    echo "  name: agentfarm-settings"
    echo "  namespace: $SYSTEM_NS"
    echo "data:"
    echo "  AGENTFARM_PUBLIC_URL: \"$PUBLIC_URL\""
    echo "  AGENTFARM_PUSH_CONTACT: \"$AF_PUSH_CONTACT\""
    echo "  AGENTFARM_ALLOWED_LOGINS: \"$AF_ALLOWED_LOGINS\""
    echo "  AGENTFARM_AGENT_IMAGE: \"$AF_AGENT_IMAGE\""
  } >"$SITE_DIR/settings-patch.yaml"

  if [ "$AF_HOST" != agentfarm ]; then
    {
      echo "# The machine name on the tailnet: the first label of tls.hosts[0]."
      echo "- op: replace"
      echo "  path: /spec/tls/0/hosts/0"
      echo "  value: $AF_HOST"
    } >"$SITE_DIR/ingress-patch.yaml"
  fi

  if [ -n "$ips" ]; then
    {
      echo "# The nodes' public IPv4 addresses: the API server and the kubelets listen there too."
      for address in $ips; do
        echo "- op: add"
        echo "  path: /spec/egress/0/to/0/ipBlock/except/-"
        echo "  value: $address/32"
      done
    } >"$SITE_DIR/node-ips-patch.yaml"
  fi

  if [ -n "$nfs_sources" ]; then
    {
      echo "# Each node's pod-range gateway (.1, its cni0 bridge) and flannel address (.0): where its NFS"
      echo "# mounts arrive from, masqueraded by kube-proxy. No pod has either address."
      echo "- op: add"
      echo "  path: /spec/ingress"
      echo "  value:"
      echo "    - from:"
      for address in $nfs_sources; do
        echo "        - ipBlock:"
        echo "            cidr: $address"
      done
      echo "      ports:"
      echo "        - protocol: TCP"
      echo "          port: 2049"
    } >"$SITE_DIR/nfs-sources-patch.yaml"
  fi

  if pulls_with_secret; then
    {
      echo "# The nodes pull the site's private images with the Secret $PULL_SECRET, for every pod of these"
      echo "# accounts: the control plane's and the agents' (default) ServiceAccounts."
      echo "- op: add"
      echo "  path: /imagePullSecrets"
      echo "  value:"
      echo "    - name: $PULL_SECRET"
    } >"$SITE_DIR/pull-secret-patch.yaml"
  fi

  if shared_home; then
    sed "s|image: $AGENT_PLACEHOLDER:[^[:space:]]*|image: $AF_AGENT_IMAGE|" \
      "$REPO_ROOT/manifests/one-time/claude-login.yaml" >"$SITE_DIR/claude-login.yaml"
  fi

  kubectl kustomize "$SITE_DIR" >/dev/null
  info "infra/site written and rendered; node exceptions:${ips:- none}"
}

step_namespaces() {
  # Before the Secrets, and those before the Deployment: the server must find vapid-keys at its first start.
  kubectl apply -f "$REPO_ROOT/manifests/base/cluster/namespace.yaml" | sed 's/^/    /'
}

step_secrets() {
  apply_token_secret CLAUDE_CODE_OAUTH_TOKEN CLAUDE_TOKEN_FILE claude-token
  apply_token_secret GITHUB_TOKEN GITHUB_TOKEN_FILE github-token

  local namespace
  if [ -n "$AF_REGISTRY_USER" ]; then
    for namespace in "$SYSTEM_NS" "$AGENTS_NS"; do
      registry_config | apply_secret_from_stdin "$namespace" "$PULL_SECRET" .dockerconfigjson \
        kubernetes.io/dockerconfigjson
    done
  elif pulls_with_secret; then
    info "Secret $PULL_SECRET kept (private images)"
  fi

  # Keep the VAPID key stable: every device's push subscription is tied to its public key.
  local key
  if is_set VAPID_PRIVATE_KEY_FILE; then
    strip <"$VAPID_PRIVATE_KEY_FILE" | apply_secret_from_stdin "$SYSTEM_NS" vapid-keys private
  elif secret_exists "$SYSTEM_NS" vapid-keys; then
    info "Secret $SYSTEM_NS/vapid-keys kept"
  else
    key=$(generate_vapid_key)
    if ! valid_vapid_key "$key"; then
      die 1 "openssl did not produce a 32-byte P-256 key (check: openssl ecparam -name prime256v1 -genkey)"
    fi
    printf '%s' "$key" | apply_secret_from_stdin "$SYSTEM_NS" vapid-keys private
    key=""
    info "generated a new VAPID key (back it up: kubectl -n $SYSTEM_NS get secret vapid-keys -o yaml)"
  fi
}

step_apply() {
  local applied
  applied=$(kubectl apply -k "$SITE_DIR")
  printf '%s\n' "$applied" | sed 's/^/    /'
  # The server reads its settings at start: a changed ConfigMap needs a new pod (Recreate: a few seconds).
  if printf '%s\n' "$applied" | grep -q '^configmap/agentfarm-settings configured'; then
    kubectl -n "$SYSTEM_NS" rollout restart deploy/agentfarm-control-plane
  fi
}

step_rollout() {
  kubectl -n "$SYSTEM_NS" rollout status deploy/agentfarm-control-plane --timeout=5m
}

step_doctor() {
  if ! kubectl -n "$SYSTEM_NS" exec deploy/agentfarm-control-plane -- agentfarm doctor; then
    die 1 "agentfarm doctor found a problem: apply the fix: lines above, then re-run infra/bootstrap.sh"
  fi
}

step_next_steps() {
  info "agentfarm is up at $PUBLIC_URL (the first request can take a minute while the certificate is issued)"
  info "1. On the phone: connect Tailscale, open $PUBLIC_URL in Safari, Share > Add to Home Screen,"
  info "   then open it from the Home Screen and allow notifications (iOS sends push only to installed apps)."
  info "2. In the tailnet policy, let only your own user reach tag:k8s on port 443."
  info "3. Measure the agents' egress policy: infra/probe-netpol.sh"
  if shared_home; then
    info "4. Shared ~/.claude: log in once with manifests/one-time/claude-login.yaml (steps in the file)."
  fi
  info "Re-run infra/bootstrap.sh after nodes are added or replaced (the egress exceptions list their IPs)."
}

# --- Run -------------------------------------------------------------------------------------------------
run_steps "$STEPS"
