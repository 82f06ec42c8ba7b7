# shellcheck shell=bash
# Shared by infra/bootstrap.sh, infra/teardown.sh, infra/probe-netpol.sh and tests/cluster/lib.sh (sourced,
# never run): output helpers, argument handling, where the kubeconfig is, the prerequisites they need, and the
# step runner that prints the plan and runs it. Only builtins run before a step does, so that --dry-run works
# with nothing but bash on PATH.

info() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  printf 'error: %s\n' "$*" >&2
  exit "$code"
}
# Refuses an argument the script does not take, with its usage (the caller's `usage`); exit 2.
unknown_argument() {
  printf 'unknown argument: %s\n\n' "$1" >&2
  usage >&2
  exit 2
}
# For the arguments a script's own options do not match: -h/--help prints its usage and exits 0, anything
# else is refused.
help_or_unknown() {
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    *) unknown_argument "$1" ;;
  esac
}
# Refuses a flag ($1) given without its value (the rest of the arguments).
require_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ]; then
    die 2 "$1 needs a value (see --help)"
  fi
}
have() { command -v "$1" >/dev/null 2>&1; }
present() { if have "$1"; then echo present; else echo missing; fi; }

# hetzner-k3s writes ./kubeconfig into the directory `create` ran in; an explicit KUBECONFIG wins.
# KUBECONFIG_NOTE says which, for messages; it is empty when there is none.
KUBECONFIG_NOTE=
if [ -n "${KUBECONFIG:-}" ]; then
  KUBECONFIG_NOTE="\$KUBECONFIG"
elif [ -f ./kubeconfig ]; then
  KUBECONFIG="$PWD/kubeconfig"
  export KUBECONFIG
  KUBECONFIG_NOTE=./kubeconfig
fi

# What the plan's first line says about the shared prerequisites.
cluster_tools_summary() {
  echo "kubectl $(present kubectl), helm $(present helm)," \
    "kubeconfig ${KUBECONFIG_NOTE:-missing (./kubeconfig or \$KUBECONFIG)}"
}

# Prints one line per missing shared prerequisite (kubectl, helm, a kubeconfig), with where to get it.
missing_cluster_tools() {
  if ! have kubectl; then
    printf '\n  kubectl: https://kubernetes.io/docs/tasks/tools/ (macOS: brew install kubectl)'
  fi
  if ! have helm; then
    printf '\n  helm 3: https://helm.sh/docs/intro/install/ (macOS: brew install helm)'
  fi
  if [ -z "$KUBECONFIG_NOTE" ]; then
    printf '\n  %s' "a kubeconfig: run from the directory where \`hetzner-k3s create\` wrote ./kubeconfig, or set KUBECONFIG"
  fi
}

# Fails (exit 2) unless the cluster answers.
require_cluster() {
  if ! kubectl get nodes -o name --request-timeout=20s >/dev/null; then
    die 2 "cannot reach the cluster with $KUBECONFIG_NOTE: is the API up, and is your current IP in" \
      "networking.allowed_networks.api of infra/cluster.yaml?"
  fi
}

# One list for the plan and the run: prints each of $1 (step names) as "==> n/total <describe name>" and,
# unless DRY_RUN is 1, runs step_<name> after printing it.
run_steps() {
  local step total=0 number=0
  for step in $1; do
    total=$((total + 1))
  done
  for step in $1; do
    number=$((number + 1))
    printf '==> %d/%d %s\n' "$number" "$total" "$(describe "$step")"
    if [ "$DRY_RUN" = 0 ]; then
      "step_$step"
    fi
  done
  if [ "$DRY_RUN" = 1 ]; then
    echo "(dry run: nothing changed)"
  fi
}
