#!/bin/sh
# Installs gVisor (runsc + containerd-shim-runsc-v1) into K3s's containerd as the runtime handler `runsc`
# (RuntimeClass `gvisor`), and drops pod traffic to the cloud metadata service on the host.
#
# Where it runs: on every node, as the single root-level `additional_post_k3s_commands` entry of
# infra/cluster.yaml, and on dedicated KVM nodes as their pool's own (infra/pools/kvm-robot.yaml). Both
# embed this file byte for byte: edit here, then `AGENTFARM_UPDATE_GOLDEN=1 cargo test -p agentfarm
# every_node_installs_gvisor` copies it into both (the test fails until then).
# Masters get it too: they never run agents, so gVisor is unused there, and the metadata block is
# harmless. For nodes that already exist:
#   hetzner-k3s run --config infra/site/cluster.yaml --script infra/node/install-gvisor.sh
#
# Why it is written this way:
# - cloud-init joins every runcmd entry into one sh script. The body runs in a subshell, so `set -eu`,
#   a failure or an `exit` ends this entry only, never the commands hetzner-k3s runs around it.
# - hetzner-k3s runs post commands twice on static nodes: from cloud-init before k3s is installed, then
#   over SSH after the install. Every step is idempotent and k3s may be absent: the containerd template
#   written by the first run is read when k3s first starts, so the second run changes nothing.
# - Autoscaled nodes run it once, from cloud-init, after the k3s agent is installed: then the template
#   is new and k3s-agent is restarted to load it.
# - This text ends up in the server's user-data, which the metadata service serves to anything on the
#   node that can reach it: never put a secret here.
# - `hetzner-k3s run --script` uploads this file as `cat > /tmp/install-gvisor.sh << 'EOF'`, so a line
#   that is only `EOF` would end the upload there and run the rest as commands. The heredocs below end at
#   names of their own (the test `scripts_survive_the_hetzner_k3s_upload` uploads it the same way).
(
set -eu

# The gVisor point release (immutable, unlike the per-date alias). Releases are listed on
# https://gvisor.dev/docs/user_guide/install/
GVISOR_RELEASE=20260810.0
# hetzner-k3s's pod network (networking.cluster_cidr in infra/cluster.yaml).
POD_CIDR=10.244.0.0/16
METADATA_IP=169.254.169.254
BIN_DIR=/usr/local/bin
RUNSC_CONFIG=/etc/containerd/runsc.toml
# K3s with containerd 2.x renders its config from this template (config version 3).
K3S_TEMPLATE=/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl
BLOCK_UNIT=agentfarm-block-metadata.service

log() {
  echo "install-gvisor: $*"
}

# Writes stdin to $1 (mode $2) unless the file already holds exactly that; sets WROTE to 1 or 0.
# Never called as a condition: `set -e` does not apply inside functions called from an `if`.
write_if_changed() {
  WROTE=0
  mkdir -p "$(dirname "$1")"
  cat >"$1.agentfarm-new"
  if [ -f "$1" ] && cmp -s "$1.agentfarm-new" "$1"; then
    rm -f "$1.agentfarm-new"
    return 0
  fi
  chmod "$2" "$1.agentfarm-new"
  mv -f "$1.agentfarm-new" "$1"
  WROTE=1
  log "wrote $1"
}

# --- 1. The binaries ------------------------------------------------------------------------------------
ARCH=$(uname -m)
case "$ARCH" in
  x86_64 | aarch64) ;;
  *)
    log "no gVisor build for $ARCH"
    exit 1
    ;;
esac

installed=$("$BIN_DIR/runsc" --version 2>/dev/null | head -n 1 || true)
if [ "$installed" = "runsc version release-$GVISOR_RELEASE" ] && [ -x "$BIN_DIR/containerd-shim-runsc-v1" ]; then
  log "gVisor release-$GVISOR_RELEASE is already installed"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  url="https://storage.googleapis.com/gvisor/releases/release/$GVISOR_RELEASE/$ARCH"
  for file in runsc runsc.sha512 containerd-shim-runsc-v1 containerd-shim-runsc-v1.sha512; do
    curl -fsSL --retry 5 --retry-delay 3 -o "$work/$file" "$url/$file"
  done
  (cd "$work" && sha512sum -c runsc.sha512 containerd-shim-runsc-v1.sha512)
  # Copy next to the target, then rename: running shims keep the old file open, and overwriting a
  # binary that is being executed fails ("text file busy").
  for file in runsc containerd-shim-runsc-v1; do
    cp "$work/$file" "$BIN_DIR/.$file.agentfarm-new"
    chmod 0755 "$BIN_DIR/.$file.agentfarm-new"
    mv -f "$BIN_DIR/.$file.agentfarm-new" "$BIN_DIR/$file"
  done
  log "installed gVisor release-$GVISOR_RELEASE"
fi

# --- 2. containerd configuration -------------------------------------------------------------------------
# systrap: the gVisor platform for VMs without nested virtualization (Hetzner Cloud has no /dev/kvm).
# The shim reads this file for every new sandbox, so changing it needs no restart.
write_if_changed "$RUNSC_CONFIG" 0644 <<'AGENTFARM_RUNSC_TOML'
[runsc_config]
  platform = "systrap"
AGENTFARM_RUNSC_TOML

# K3s's own configuration ("base") plus one runtime. Never redefine a table that base already has
# (runtimes.runc): containerd then refuses to start ("table ... already exists").
write_if_changed "$K3S_TEMPLATE" 0644 <<'AGENTFARM_CONTAINERD_TEMPLATE'
{{ template "base" . }}

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc]
  runtime_type = "io.containerd.runsc.v1"

[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runsc.options]
  TypeUrl = "io.containerd.runsc.v1.options"
  ConfigPath = "/etc/containerd/runsc.toml"
AGENTFARM_CONTAINERD_TEMPLATE
template_changed=$WROTE

# --- 3. Metadata block (defence in depth, SECURITY.md T6) ------------------------------------------------
# The agents' NetworkPolicy already excepts 169.254.0.0/16; this also covers pods that no policy selects.
# raw/PREROUTING sees pod packets before any other rule (kube-router's FORWARD chain can ACCEPT traffic a
# policy allows before a later rule); the FORWARD rule also catches addresses rewritten by DNAT. A
# systemd unit re-applies both at every boot, because iptables rules do not survive a reboot and
# cloud-init runs only on the first one. hostNetwork pods are not covered (they use the node's address):
# the `restricted` Pod Security level forbids them in the agentfarm namespaces. That is also what keeps the
# Hetzner CSI node plugin working: it reads its server ID from the metadata service and exits without it,
# so infra/bootstrap.sh runs it on the host network (the test `the_metadata_rule_spares_host_network_pods`
# checks both sides of this rule in network namespaces).
if command -v iptables >/dev/null 2>&1 && command -v systemctl >/dev/null 2>&1; then
  write_if_changed "/etc/systemd/system/$BLOCK_UNIT" 0644 <<AGENTFARM_BLOCK_UNIT
[Unit]
Description=agentfarm: drop pod traffic to the cloud metadata service
Before=k3s.service k3s-agent.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'iptables -t raw -C PREROUTING -s $POD_CIDR -d $METADATA_IP/32 -j DROP 2>/dev/null || iptables -t raw -I PREROUTING 1 -s $POD_CIDR -d $METADATA_IP/32 -j DROP'
ExecStart=/bin/sh -c 'iptables -C FORWARD -s $POD_CIDR -d $METADATA_IP/32 -j DROP 2>/dev/null || iptables -I FORWARD 1 -s $POD_CIDR -d $METADATA_IP/32 -j DROP'

[Install]
WantedBy=multi-user.target
AGENTFARM_BLOCK_UNIT
  if [ "$WROTE" = 1 ]; then
    systemctl daemon-reload
  fi
  systemctl enable "$BLOCK_UNIT" >/dev/null 2>&1
  # The rules are idempotent (-C before -I): restarting re-asserts them.
  systemctl restart "$BLOCK_UNIT"
  log "pod traffic from $POD_CIDR to $METADATA_IP is dropped"
else
  log "iptables or systemd not found: host metadata block skipped (the agents' NetworkPolicy still applies)"
fi

# --- 4. Load the runtime -----------------------------------------------------------------------------------
# Only the template needs a restart (containerd reads its config at start). Running containers survive
# it: the k3s units use KillMode=process. Before the k3s install neither service exists: nothing to do.
if [ "$template_changed" = 1 ]; then
  for service in k3s k3s-agent; do
    if systemctl is-active --quiet "$service" 2>/dev/null; then
      log "restarting $service to load the runsc runtime"
      systemctl restart "$service"
    fi
  done
fi
)
