#!/usr/bin/env bash
# Writes this site's hetzner-k3s configuration, infra/site/cluster.yaml (git-ignored), from the committed
# template infra/cluster.yaml and a few inputs: the addresses you administer the cluster from, your SSH key,
# and the opt-in burst pool. Nothing in the repository is edited, and the file holds no secret (hetzner-k3s
# reads the Hetzner token from HCLOUD_TOKEN). Safe to re-run: the file is rewritten whole each time.
#
# Usage: infra/cluster-config.sh [--help]      (then: hetzner-k3s create --config infra/site/cluster.yaml)

set -euo pipefail

SCRIPT_DIR=${BASH_SOURCE[0]%/*}
if [ "$SCRIPT_DIR" = "${BASH_SOURCE[0]}" ]; then
  SCRIPT_DIR=.
fi
INFRA_DIR=$(cd "$SCRIPT_DIR" && pwd)
SITE_DIR=$INFRA_DIR/site
TEMPLATE=$INFRA_DIR/cluster.yaml
BURST_POOL=$INFRA_DIR/pools/agents-burst.yaml
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$INFRA_DIR/lib.sh"

usage() {
  cat <<'EOF'
Usage: infra/cluster-config.sh [--help]

Writes infra/site/cluster.yaml for `hetzner-k3s create --config infra/site/cluster.yaml`, from
infra/cluster.yaml and these environment variables:

  AGENTFARM_ADMIN_CIDRS         required: the public addresses you run kubectl and ssh from, as CIDRs,
                                comma-separated, e.g. 198.51.100.4/32 (your IPv4: curl -4 https://ifconfig.me).
                                Only they reach SSH and the Kubernetes API; 0.0.0.0/0 and ::/0 are refused
  AGENTFARM_SSH_KEY             the private key hetzner-k3s logs in with (default ~/.ssh/id_ed25519); its
                                public key is the same path with .pub
  AGENTFARM_SSH_USE_AGENT       1 if the key has a passphrase (ssh-add it first), else 0 (default)
  AGENTFARM_SERVER_TYPE         the k3s server's Hetzner server type (default cx23)
  AGENTFARM_WORKER_TYPE         the agent workers' server type (default cx33); CAX types are arm64, so the
                                images need linux/arm64 too
  AGENTFARM_EXISTING_SSH_KEY_NAME
                                the name under which this public key already exists in the Hetzner project,
                                if it does (hetzner-k3s reuses it; the burst pool needs it named)
  AGENTFARM_BURST_POOL          1 adds the autoscaled pool agents-burst (0-2 more CX33). Its nodes join from
                                cloud-init alone, so their user-data holds the k3s server token: read
                                "Burst pool" in infra/README.md first. Default 0

Exit status: 0 written, 2 missing or invalid inputs.
EOF
}

for arg in "$@"; do
  help_or_unknown "$arg"
done

ADMIN_CIDRS=${AGENTFARM_ADMIN_CIDRS:-}
# A literal ~/ (hetzner-k3s expands it), so the file does not depend on where it was written.
# shellcheck disable=SC2088
SSH_KEY=${AGENTFARM_SSH_KEY:-'~/.ssh/id_ed25519'}
USE_AGENT=${AGENTFARM_SSH_USE_AGENT:-0}
EXISTING_KEY_NAME=${AGENTFARM_EXISTING_SSH_KEY_NAME:-}
BURST=${AGENTFARM_BURST_POOL:-0}
SERVER_TYPE=${AGENTFARM_SERVER_TYPE:-cx23}
WORKER_TYPE=${AGENTFARM_WORKER_TYPE:-cx33}

problems=""
cidrs=""
if [ -z "$ADMIN_CIDRS" ]; then
  problems="$problems
  AGENTFARM_ADMIN_CIDRS is not set: your public IPv4 as /32, e.g. \$(curl -4 -s https://ifconfig.me)/32"
else
  ipv4='^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$'
  ipv6='^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$'
  IFS=, read -r -a given <<<"$ADMIN_CIDRS"
  for cidr in "${given[@]}"; do
    case "$cidr" in
      0.0.0.0/0 | ::/0)
        problems="$problems
  AGENTFARM_ADMIN_CIDRS: $cidr would open SSH and the Kubernetes API to everyone (and to every pod, whose
  traffic to a node's public address leaves from that node): name your own address"
        ;;
      *)
        if [[ $cidr =~ $ipv4 || $cidr =~ $ipv6 ]]; then
          cidrs="$cidrs $cidr"
        else
          problems="$problems
  AGENTFARM_ADMIN_CIDRS: '$cidr' is not an address with a prefix length, like 198.51.100.4/32"
        fi
        ;;
    esac
  done
fi
case "$USE_AGENT" in
  0) USE_AGENT=false ;;
  1) USE_AGENT=true ;;
  *) problems="$problems
  AGENTFARM_SSH_USE_AGENT must be 1 (the key has a passphrase; ssh-add it) or 0" ;;
esac
case "$BURST" in
  0 | 1) ;;
  *) problems="$problems
  AGENTFARM_BURST_POOL must be 1 (add the autoscaled pool) or 0" ;;
esac
for type in SERVER_TYPE:$SERVER_TYPE WORKER_TYPE:$WORKER_TYPE; do
  if ! [[ ${type#*:} =~ ^(cx|cpx|cax|ccx)[0-9]{2}$ ]]; then
    problems="$problems
  AGENTFARM_${type%%:*} must be a Hetzner Cloud server type like cx33, cpx32 or cax21 (hcloud server-type list)"
  fi
done
# Paths and names go into the YAML as double-quoted scalars: nothing that would need escaping.
safe='^[A-Za-z0-9_./~+@-]+$'
if ! [[ $SSH_KEY =~ $safe ]]; then
  problems="$problems
  AGENTFARM_SSH_KEY must be a plain path (letters, digits, . _ - / ~ + @), e.g. ~/.ssh/id_ed25519"
fi
if [ -n "$EXISTING_KEY_NAME" ] && ! [[ $EXISTING_KEY_NAME =~ $safe ]]; then
  problems="$problems
  AGENTFARM_EXISTING_SSH_KEY_NAME must be the key's name as the Hetzner Console shows it, without spaces"
fi
if [ -n "$problems" ]; then
  die 2 "missing or invalid inputs (see infra/cluster-config.sh --help):$problems"
fi
# hetzner-k3s reads both files; `~/` is expanded by it, so check them the same way.
key_on_disk=${SSH_KEY/#\~\//$HOME/}
if ! [ -r "$key_on_disk.pub" ]; then
  warn "$SSH_KEY.pub is not readable here: hetzner-k3s needs it (ssh-keygen -t ed25519 makes a pair)"
fi

# The template's placeholders (a documentation address in both allowed_networks lists; the key paths and
# use_agent under networking.ssh; the autoscaler switch) are replaced line by line; the burst pool goes
# in after the last worker pool, where the template marks its place.
mkdir -p "$SITE_DIR"
printf '*\n' >"$SITE_DIR/.gitignore"
output=$SITE_DIR/cluster.yaml
awk -v cidrs="$cidrs" -v key="$SSH_KEY" -v agent="$USE_AGENT" -v existing="$EXISTING_KEY_NAME" \
  -v burst="$BURST" -v burst_file="$BURST_POOL" -v server_type="$SERVER_TYPE" -v worker_type="$WORKER_TYPE" '
  BEGIN {
    placeholder = "      - 203.0.113.7/32"
    replaced = 0
  }
  NR == 1 {
    print "# Written by infra/cluster-config.sh from infra/cluster.yaml for one site; re-run it instead of editing."
  }
  $0 == placeholder {
    n = split(cidrs, list, " ")
    for (i = 1; i <= n; i++) print "      - " list[i]
    replaced++
    next
  }
  /^    public_key_path: / { print "    public_key_path: \"" key ".pub\""; next }
  /^    private_key_path: / {
    print "    private_key_path: \"" key "\""
    if (existing != "") print "    existing_ssh_key_name: \"" existing "\""
    next
  }
  /^    use_agent: / { print "    use_agent: " agent; next }
  /^  instance_type: / { print "  instance_type: " server_type; next }
  /^    instance_type: / { print "    instance_type: " worker_type; next }
  /^  # agentfarm: opt-in worker pools go here/ {
    print
    if (burst == 1) {
      while ((getline line < burst_file) > 0) {
        if (line ~ /^    instance_type: /) line = "    instance_type: " worker_type
        print line
      }
      close(burst_file)
    }
    next
  }
  /^  cluster_autoscaler:$/ { autoscaler = 1; print; next }
  autoscaler && /^    enabled: / {
    print "    enabled: " (burst == 1 ? "true" : "false")
    autoscaler = 0
    next
  }
  { print }
  END {
    if (replaced != 2) {
      print "infra/cluster.yaml: expected the placeholder address in allowed_networks.ssh and .api" > "/dev/stderr"
      exit 1
    }
  }
' "$TEMPLATE" >"$output.new"
mv -f "$output.new" "$output"

info "wrote infra/site/cluster.yaml: admin addresses$cidrs; burst pool $(if [ "$BURST" = 1 ]; then echo on; else echo off; fi)"
info "next: hetzner-k3s create --config infra/site/cluster.yaml"
