#!/usr/bin/env bash
# Removes what infra/bootstrap.sh installed: the agents' Jobs, the site overlay's objects, the Helm releases
# (kata-deploy, the Tailscale operator, csi-driver-nfs). Keeps the data unless told otherwise, and leaves
# the cluster itself alone unless --cluster is given. Safe to re-run: everything missing is skipped.
#
# Usage: infra/teardown.sh [--dry-run] [--yes] [--delete-data] [--cluster] [--help]

set -euo pipefail

# Builtins only up to the plan, so that --dry-run works with nothing but bash on PATH.
SCRIPT_DIR=${BASH_SOURCE[0]%/*}
if [ "$SCRIPT_DIR" = "${BASH_SOURCE[0]}" ]; then
  SCRIPT_DIR=.
fi
INFRA_DIR=$(cd "$SCRIPT_DIR" && pwd)
REPO_ROOT=$(cd "$INFRA_DIR/.." && pwd)
SITE_DIR=$INFRA_DIR/site
CLUSTER_CONFIG=$INFRA_DIR/site/cluster.yaml
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$INFRA_DIR/lib.sh"

usage() {
  cat <<'EOF'
Usage: infra/teardown.sh [--dry-run] [--yes] [--delete-data] [--cluster] [--help]

Removes agentfarm from the cluster in ./kubeconfig (or $KUBECONFIG), in this order:
  1. the agents' Jobs in agentfarm-agents (and the pods' log-archiving finalizer, if nothing removes it)
  2. the objects of the site overlay infra/site (manifests/overlays/hetzner if it does not exist)
  3. the Helm releases kata-deploy, tailscale-operator (and namespace tailscale), csi-driver-nfs
  4. the cluster itself only with --cluster; otherwise the command to delete it is printed

By default the data is KEPT: namespace agentfarm-system with the PVCs agentfarm-data (the SQLite database)
and agentfarm-backups (its nightly copies), the Secret vapid-keys (devices' push subscriptions depend on
it) and the Secrets claude-token and github-token (your tokens), and, with shared-claude-home, namespace
agentfarm-nfs with the PVC nfs-data (the shared Claude login). The agents' namespace goes.

  --dry-run      print the plan and change nothing (contacts no cluster)
  --yes          do not ask for confirmation
  --delete-data  also delete the data above (and the Hetzner Volumes behind the PVCs)
  --cluster      then run `hetzner-k3s delete --config infra/site/cluster.yaml`: needs hetzner-k3s,
                 HCLOUD_TOKEN and `protect_against_deletion: false` in infra/site/cluster.yaml
  --help         this text
EOF
}

DRY_RUN=0
ASSUME_YES=0
DELETE_DATA=0
DELETE_CLUSTER=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    --yes) ASSUME_YES=1 ;;
    --delete-data) DELETE_DATA=1 ;;
    --cluster) DELETE_CLUSTER=1 ;;
    *) help_or_unknown "$arg" ;;
  esac
done

AGENTS_NS=agentfarm-agents
SYSTEM_NS=agentfarm-system
NFS_NS=agentfarm-nfs
MANAGED_SELECTOR=app.kubernetes.io/managed-by=agentfarm
ARCHIVE_FINALIZER=agentfarm.dev/archive-logs

if [ -f "$SITE_DIR/kustomization.yaml" ]; then
  OVERLAY_DIR=$SITE_DIR
  OVERLAY_NOTE=infra/site
else
  OVERLAY_DIR=$REPO_ROOT/manifests/overlays/hetzner
  OVERLAY_NOTE="manifests/overlays/hetzner (infra/site not found)"
fi

# Drops the kept objects from rendered manifests on stdin. kustomize's output is normalized (`kind:` and
# `metadata:` at column 0, the object's name as `  name:` inside metadata), which is all this relies on.
without_kept_data() {
  awk '
    BEGIN {
      keep["Namespace/agentfarm-system"] = 1
      keep["Namespace/agentfarm-nfs"] = 1
      keep["PersistentVolumeClaim/agentfarm-data"] = 1
      keep["PersistentVolumeClaim/agentfarm-backups"] = 1
      keep["PersistentVolumeClaim/nfs-data"] = 1
    }
    function flush() {
      if (buf != "" && !((kind "/" name) in keep)) {
        print "---"
        printf "%s", buf
      }
      buf = ""; kind = ""; name = ""; inmeta = 0
    }
    /^---$/ { flush(); next }
    {
      buf = buf $0 "\n"
      if ($0 ~ /^kind: /) kind = substr($0, 7)
      if ($0 == "metadata:") inmeta = 1
      else if ($0 ~ /^[^ ]/) inmeta = 0
      else if (inmeta && $0 ~ /^  name: /) name = substr($0, 9)
    }
    END { flush() }
  '
}

# hetzner-k3s refuses `delete` while infra/site/cluster.yaml says protect_against_deletion: true.
protection_off() { grep -Eq '^protect_against_deletion:[[:space:]]*false([[:space:]#]|$)' "$CLUSTER_CONFIG"; }

# The PV bound to a claim, or nothing.
volume_of() { kubectl -n "$1" get pvc "$2" -o jsonpath='{.spec.volumeName}' 2>/dev/null || true; }

uninstall_release() {
  if helm status "$1" --namespace "$2" >/dev/null 2>&1; then
    helm uninstall "$1" --namespace "$2" --wait --timeout 10m
  else
    info "$1 ($2): not installed"
  fi
}

# --- The steps: one list for the plan and the run --------------------------------------------------------
STEPS="prerequisites confirm agent_jobs overlay helm_releases cluster"

describe() {
  case "$1" in
    prerequisites)
      local extra=""
      if [ "$DELETE_CLUSTER" = 1 ]; then
        local token=set protection=on
        if [ -z "${HCLOUD_TOKEN:-}" ]; then token="not set"; fi
        if protection_off; then protection=off; fi
        extra=", hetzner-k3s $(present hetzner-k3s), HCLOUD_TOKEN $token, deletion protection in infra/site/cluster.yaml $protection (must be off)"
      fi
      echo "checking prerequisites: $(cluster_tools_summary)$extra; then whether the cluster answers"
      ;;
    confirm)
      if [ "$ASSUME_YES" = 1 ]; then
        echo "confirmation skipped (--yes)"
      else
        echo "asking for confirmation"
      fi
      ;;
    agent_jobs)
      echo "deleting the agents' Jobs ($MANAGED_SELECTOR in $AGENTS_NS); removing the finalizer" \
        "$ARCHIVE_FINALIZER from pods the control plane does not release"
      ;;
    overlay)
      if [ "$DELETE_DATA" = 1 ]; then
        echo "deleting every object of $OVERLAY_NOTE, data included (--delete-data)"
      else
        echo "deleting the objects of $OVERLAY_NOTE, keeping namespace $SYSTEM_NS (PVCs agentfarm-data and" \
          "agentfarm-backups, Secrets vapid-keys, claude-token, github-token) and namespace $NFS_NS (PVC nfs-data);" \
          "--delete-data removes them too"
      fi
      ;;
    helm_releases) echo "uninstalling the Helm releases kata-deploy, tailscale-operator (and namespace tailscale), csi-driver-nfs" ;;
    cluster)
      if [ "$DELETE_CLUSTER" = 1 ]; then
        echo "deleting the cluster: hetzner-k3s delete --config infra/site/cluster.yaml"
      else
        echo "keeping the cluster (printing how to delete it; --cluster runs it)"
      fi
      ;;
  esac
}

step_prerequisites() {
  local missing
  missing=$(missing_cluster_tools)
  if [ "$DELETE_CLUSTER" = 1 ]; then
    if ! have hetzner-k3s; then
      missing="$missing
  hetzner-k3s: https://github.com/vitobotta/hetzner-k3s (brew install vitobotta/tap/hetzner_k3s)"
    fi
    if [ -z "${HCLOUD_TOKEN:-}" ]; then
      missing="$missing
  HCLOUD_TOKEN: the project's read+write Hetzner Cloud API token, in the environment"
    fi
    if ! protection_off; then
      missing="$missing
  protect_against_deletion: false in infra/site/cluster.yaml (it is true so that no one deletes the cluster by accident)"
    fi
  fi
  if [ -n "$missing" ]; then
    die 2 "missing prerequisites:$missing"
  fi
  require_cluster
}

step_confirm() {
  if [ "$ASSUME_YES" = 1 ]; then
    return 0
  fi
  if ! [ -t 0 ]; then
    die 2 "not asking on a non-interactive input: pass --yes"
  fi
  local what="agentfarm's objects, the agents' Jobs and Secrets, and the Helm releases"
  if [ "$DELETE_DATA" = 1 ]; then
    what="$what, AND THE DATA (database, VAPID key, shared Claude login)"
  fi
  if [ "$DELETE_CLUSTER" = 1 ]; then
    what="$what, AND THE WHOLE CLUSTER"
  fi
  printf 'This deletes %s from the cluster in %s.\nType yes to continue: ' "$what" "$KUBECONFIG_NOTE"
  local answer=""
  read -r answer || true
  if [ "$answer" != yes ]; then
    die 1 "cancelled: nothing was deleted"
  fi
}

step_agent_jobs() {
  if ! kubectl get namespace "$AGENTS_NS" >/dev/null 2>&1; then
    info "namespace $AGENTS_NS does not exist: nothing to do"
    return 0
  fi
  kubectl -n "$AGENTS_NS" delete jobs -l "$MANAGED_SELECTOR" --ignore-not-found --wait=false
  # The Job pods carry the finalizer $ARCHIVE_FINALIZER: the control plane archives their logs, then
  # removes it. Give it the chance while it runs; without it the pods would stay Terminating forever.
  local ready
  ready=$(kubectl -n "$SYSTEM_NS" get deploy agentfarm-control-plane -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true)
  if [ -n "$(kubectl -n "$AGENTS_NS" get pods -l "$MANAGED_SELECTOR" -o name)" ] && [ "${ready:-0}" -ge 1 ]; then
    info "waiting up to 2 minutes for the control plane to archive the agents' logs"
    kubectl -n "$AGENTS_NS" wait --for=delete pods -l "$MANAGED_SELECTOR" --timeout=2m >/dev/null 2>&1 || true
  fi
  local pod finalizer finalizers index
  for pod in $(kubectl -n "$AGENTS_NS" get pods -l "$MANAGED_SELECTOR" -o jsonpath='{.items[*].metadata.name}'); do
    finalizers=$(kubectl -n "$AGENTS_NS" get pod "$pod" -o jsonpath='{.metadata.finalizers[*]}' 2>/dev/null || true)
    index=0
    for finalizer in $finalizers; do
      if [ "$finalizer" = "$ARCHIVE_FINALIZER" ]; then
        # JSON patch by index, guarded by `test`: removes exactly this finalizer (the Job controller has
        # its own on the same pods) and fails instead of removing another if the list changed meanwhile.
        if kubectl -n "$AGENTS_NS" patch pod "$pod" --type=json -p \
          "[{\"op\":\"test\",\"path\":\"/metadata/finalizers/$index\",\"value\":\"$ARCHIVE_FINALIZER\"},{\"op\":\"remove\",\"path\":\"/metadata/finalizers/$index\"}]" \
          >/dev/null; then
          info "pod $pod: finalizer removed (its logs were not archived)"
        else
          warn "pod $pod: could not remove $ARCHIVE_FINALIZER; re-run infra/teardown.sh"
        fi
        break
      fi
      index=$((index + 1))
    done
  done
}

step_overlay() {
  local data_volume="" backups_volume="" nfs_volume="" home_volume=""
  if [ "$DELETE_DATA" = 1 ]; then
    data_volume=$(volume_of "$SYSTEM_NS" agentfarm-data)
    backups_volume=$(volume_of "$SYSTEM_NS" agentfarm-backups)
    nfs_volume=$(volume_of "$NFS_NS" nfs-data)
    home_volume=$(volume_of "$AGENTS_NS" claude-home)
    # Waits for each object to be gone, the Ingress included: the Tailscale operator (still running)
    # removes its proxy and tailnet device first.
    kubectl delete -k "$OVERLAY_DIR" --ignore-not-found --timeout=10m
  else
    kubectl kustomize "$OVERLAY_DIR" | without_kept_data |
      kubectl delete -f - --ignore-not-found --timeout=10m
    info "kept: namespace $SYSTEM_NS (PVCs agentfarm-data, agentfarm-backups, Secret vapid-keys), namespace $NFS_NS (PVC nfs-data) if present"
  fi
  # Dynamically provisioned Hetzner Volumes are deleted with their PV, asynchronously: wait, so that
  # deleting the cluster next does not leave them behind (and billed).
  local volume
  for volume in $data_volume $backups_volume $nfs_volume; do
    if ! kubectl wait --for=delete "pv/$volume" --timeout=3m >/dev/null 2>&1; then
      warn "PV $volume still exists: check for a leftover Hetzner Volume (hcloud volume list)"
    fi
  done
  # claude-home's PV is Retain (never deleted with its claim); its data lived on nfs-data.
  if [ -n "$home_volume" ]; then
    kubectl delete pv "$home_volume" --ignore-not-found
  fi
}

step_helm_releases() {
  uninstall_release kata-deploy kube-system
  uninstall_release tailscale-operator tailscale
  kubectl delete namespace tailscale --ignore-not-found --timeout=5m
  uninstall_release csi-driver-nfs kube-system
}

step_cluster() {
  if [ "$DELETE_CLUSTER" = 1 ]; then
    hetzner-k3s delete --config "$CLUSTER_CONFIG"
    return 0
  fi
  info "The cluster keeps running (and costing). To delete it:"
  info "  1. set protect_against_deletion: false in infra/site/cluster.yaml (hetzner-k3s refuses while it is true)"
  info "  2. HCLOUD_TOKEN=<token> hetzner-k3s delete --config infra/site/cluster.yaml"
  if [ "$DELETE_DATA" = 0 ]; then
    info "  3. the kept PVCs' Hetzner Volumes survive the cluster: delete them in the Hetzner console" \
      "(or hcloud volume list / delete) once you no longer need the data"
  fi
}

# --- Run -------------------------------------------------------------------------------------------------
run_steps "$STEPS"
