#!/usr/bin/env bash
# CL-10: a backup restores into a working control plane. It takes a backup the way infra/README.md
# ("Backup and restore") does (or uses --backup), checks it with PRAGMA integrity_check, restores it onto a
# fresh volume, starts the control plane on that volume against the live cluster, checks that it knows the
# backup's runs, adopts a running agent and still delivers push, then points the control plane back at its
# own volume. Whatever happens, the exit trap restores the Deployment and deletes the drill's volume.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-10-backup-restore.sh [--url URL] [--backup FILE] [--answers LIST] [--help]

CL-10 backup and restore drill.
Pass: the backup (a tar of /data/agentfarm.db*, taken now unless --backup) passes PRAGMA integrity_check;
restored onto a fresh volume, the control plane starts on it against the live cluster, is ready, lists
every run the backup holds, adopts the agent that was running (it takes a follow-up), and a test
notification reaches the phone.

Needs: kubectl, curl, jq, the agentfarm app over the tailnet; sqlite3 here for the integrity and runs
checks (a SKIP without it).
Changes, read first: the control plane is DOWN three times for a minute or two (scaled to 0 for the
backup and for each switch). A new PVC agentfarm-cl-10-restore in agentfarm-system (a 10 Gi Hetzner
Volume while it exists) receives the backup; the Deployment agentfarm-control-plane uses it during the
drill and is pointed back at agentfarm-data on exit, whatever happens: what the app records during the
drill is not kept. Launch nothing meanwhile. One config and one run (model haiku), stopped and deleted on
exit; the backup is written to a temporary directory and deleted on exit. With --backup, agentfarm must
have no active run (the restored control plane deletes the Jobs of runs its database does not know).

EOF
  api_help
  cat <<'EOF'
  --backup FILE         restore this tar (infra/README.md's backup) instead of taking one now
EOF
  answers_help cl-10.push=y
  cat <<'EOF'
  --help                this text

Questions: cl-10.push (did the test notification from the restored control plane arrive?).
Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

BACKUP=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; API_URL=$2; shift ;;
    --backup) require_value "$@"; BACKUP=$2; shift ;;
    --answers) require_value "$@"; ANSWERS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done
if [ -n "$BACKUP" ] && [ ! -f "$BACKUP" ]; then
  die 2 "--backup $BACKUP: no such file"
fi

DRILL_CLAIM=agentfarm-cl-10-restore
DATA_VOLUME_PATH=/spec/template/spec/volumes/0
REPLICAS=1
SCALED_DOWN=0
SWITCHED=0
WORK_DIR=

scale_control_plane() {
  kubectl -n "$SYSTEM_NAMESPACE" scale "deploy/$CONTROL_PLANE" --replicas="$1" >/dev/null
  if [ "$1" = 0 ]; then
    SCALED_DOWN=1
    kubectl -n "$SYSTEM_NAMESPACE" wait --for=delete pod -l "$CONTROL_PLANE_SELECTOR" --timeout=3m \
      >/dev/null 2>&1 || true
  else
    SCALED_DOWN=0
    kubectl -n "$SYSTEM_NAMESPACE" rollout status "deploy/$CONTROL_PLANE" --timeout=5m >/dev/null
  fi
}

# Points the Deployment's data volume from claim $1 to claim $2 (refused if it is not on $1).
switch_claim() {
  kubectl -n "$SYSTEM_NAMESPACE" patch "deploy/$CONTROL_PLANE" --type=json -p "[
    {\"op\": \"test\", \"path\": \"$DATA_VOLUME_PATH/persistentVolumeClaim/claimName\", \"value\": \"$1\"},
    {\"op\": \"replace\", \"path\": \"$DATA_VOLUME_PATH/persistentVolumeClaim/claimName\", \"value\": \"$2\"}
  ]" >/dev/null
}

# On exit: the control plane on its own volume and running, the drill's volume and files gone.
# shellcheck disable=SC2317 # called by the exit trap (on_exit)
restore_original() {
  if [ "$SWITCHED" = 1 ]; then
    info "pointing $CONTROL_PLANE back at $DATA_CLAIM"
    scale_control_plane 0
    if switch_claim "$DRILL_CLAIM" "$DATA_CLAIM"; then
      SWITCHED=0
    else
      warn "could not point $CONTROL_PLANE back at $DATA_CLAIM: kubectl -n $SYSTEM_NAMESPACE edit deploy/$CONTROL_PLANE (volume data)"
    fi
  fi
  if [ "$SCALED_DOWN" = 1 ]; then
    scale_control_plane "$REPLICAS"
    wait_for_app 180 || warn "the app does not answer yet at $API_URL"
  fi
  if [ "$SWITCHED" = 0 ]; then
    kubectl -n "$SYSTEM_NAMESPACE" delete pvc "$DRILL_CLAIM" --ignore-not-found --wait=false >/dev/null
  fi
  if [ -n "$WORK_DIR" ]; then
    rm -rf "$WORK_DIR"
  fi
}

# Copies the control plane's data files into $WORK_DIR/backup.tar with the control plane stopped.
take_backup() {
  echo "==> backup: the control plane stops for a minute"
  scale_control_plane 0
  POD_NAMESPACE=$SYSTEM_NAMESPACE POD_RUNTIME_CLASS='' POD_CLAIM=$DATA_CLAIM POD_CLAIM_READ_ONLY=true \
    start_pod agentfarm-cl-10-backup "$BUSYBOX_IMAGE" 'exec sleep 3600'
  POD_NAMESPACE=$SYSTEM_NAMESPACE wait_for_pod_phase agentfarm-cl-10-backup 300 Running ||
    die 1 "the backup pod did not start"
  kubectl -n "$SYSTEM_NAMESPACE" exec agentfarm-cl-10-backup -- sh -c 'cd /data && tar -cf - agentfarm.db*' \
    >"$WORK_DIR/backup.tar"
  kubectl -n "$SYSTEM_NAMESPACE" delete pod agentfarm-cl-10-backup --wait=true >/dev/null
  scale_control_plane "$REPLICAS"
  wait_for_app 180 || die 1 "the app does not answer after the backup"
  BACKUP=$WORK_DIR/backup.tar
}

# Checks the backup's database here: integrity_check, and lists its newest runs into $WORK_DIR/runs.
check_backup() {
  local verdict
  mkdir -p "$WORK_DIR/files"
  tar -xf "$BACKUP" -C "$WORK_DIR/files"
  if ! have sqlite3; then
    skip "the backup passes PRAGMA integrity_check" "sqlite3 is not installed here"
    return
  fi
  verdict=$(sqlite3 "$WORK_DIR/files/agentfarm.db" 'PRAGMA integrity_check;' 2>&1) || true
  if [ "$verdict" = ok ]; then
    pass "the backup passes PRAGMA integrity_check"
  else
    fail "the backup passes PRAGMA integrity_check" "$(printf '%s' "$verdict" | head -n 3 | tr '\n' ' ')"
  fi
  sqlite3 "$WORK_DIR/files/agentfarm.db" 'SELECT id FROM runs ORDER BY id DESC LIMIT 500;' \
    >"$WORK_DIR/runs" 2>/dev/null || true
}

# Creates the drill's volume and copies the backup onto it.
restore_onto_fresh_volume() {
  echo "==> restore onto a fresh volume $DRILL_CLAIM"
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $DRILL_CLAIM
  namespace: $SYSTEM_NAMESPACE
  labels:
    $CHECK_LABEL: $CHECK_KEY
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 10Gi
EOF
  POD_NAMESPACE=$SYSTEM_NAMESPACE POD_RUNTIME_CLASS='' POD_CLAIM=$DRILL_CLAIM \
    start_pod agentfarm-cl-10-restore "$BUSYBOX_IMAGE" 'exec sleep 3600'
  POD_NAMESPACE=$SYSTEM_NAMESPACE wait_for_pod_phase agentfarm-cl-10-restore 600 Running ||
    die 1 "the restore pod did not start (is the volume provisioned? kubectl -n $SYSTEM_NAMESPACE describe pvc $DRILL_CLAIM)"
  kubectl -n "$SYSTEM_NAMESPACE" exec -i agentfarm-cl-10-restore -- tar -xf - -C /data <"$BACKUP"
  kubectl -n "$SYSTEM_NAMESPACE" exec agentfarm-cl-10-restore -- test -s /data/agentfarm.db ||
    die 1 "the restored volume has no agentfarm.db: is $BACKUP a backup from infra/README.md?"
  kubectl -n "$SYSTEM_NAMESPACE" delete pod agentfarm-cl-10-restore --wait=true >/dev/null
}

# Sends run $1 a one-line follow-up; 1 if the API refuses it.
follow_up() {
  api POST "/api/runs/$1/messages" \
    '{"text": "Reply with the single word again. Do not use any tools."}' >/dev/null
}

start_check CL-10
require_kubectl
require_api
REPLICAS=$(kubectl -n "$SYSTEM_NAMESPACE" get "deploy/$CONTROL_PLANE" -o jsonpath='{.spec.replicas}')
claim=$(kubectl -n "$SYSTEM_NAMESPACE" get "deploy/$CONTROL_PLANE" \
  -o jsonpath='{.spec.template.spec.volumes[0].persistentVolumeClaim.claimName}')
if [ "$claim" != "$DATA_CLAIM" ]; then
  die 2 "$CONTROL_PLANE's first volume is on claim '${claim}', not $DATA_CLAIM: an earlier drill left it? Point it back first"
fi
WORK_DIR=$(mktemp -d)
on_exit restore_original

run=
if [ -z "$BACKUP" ]; then
  create_config "$READY_TASK"
  launch_run "$CONFIG_ID"
  run=$RUN_ID
  expect_waiting "$run" "the agent starts"
  take_backup
  follow_up "$run" || warn "run $run did not take a follow-up after the backup"
else
  active=$(api GET '/api/runs?limit=500' | jq '[.[] | select(.state | IN("queued", "starting", "running", "waiting_for_input"))] | length')
  if [ "$active" != 0 ]; then
    die 2 "agentfarm has $active active run(s): with --backup, stop them first (the restored control plane would delete their Jobs)"
  fi
fi
check_backup
restore_onto_fresh_volume

echo "==> the control plane starts on the restored volume"
if [ -n "$run" ]; then
  follow_up "$run" || warn "run $run did not take a follow-up before the switch"
fi
scale_control_plane 0
SWITCHED=1
switch_claim "$DATA_CLAIM" "$DRILL_CLAIM"
scale_control_plane "$REPLICAS"
if wait_for_app 180; then
  pass "the control plane starts on the restored volume and is ready"
else
  fail "the control plane starts on the restored volume and is ready" "$API_URL/readyz does not answer"
  finish_checks
fi

if [ -s "$WORK_DIR/runs" ]; then
  listed=$(api GET '/api/runs?limit=500' | jq -r '.[].id' | sort)
  missing=$(sort "$WORK_DIR/runs" | comm -23 - <(printf '%s\n' "$listed") | head -n 5)
  if [ -z "$missing" ]; then
    pass "it lists every run the backup holds ($(wc -l <"$WORK_DIR/runs" | tr -d ' '))"
  else
    fail "it lists every run the backup holds" "missing, among others: $(printf '%s' "$missing" | tr '\n' ' ')"
  fi
elif have sqlite3; then
  skip "it lists every run the backup holds" "the backup holds no run"
fi

if [ -n "$run" ]; then
  if wait_for_run "$run" "running waiting_for_input" 120 && follow_up "$run"; then
    pass "the running agent is adopted and takes a follow-up (run $run)"
  else
    fail "the running agent is adopted and takes a follow-up" "run $run is ${RUN_STATE:-unknown}"
  fi
else
  skip "the running agent is adopted" "--backup: no agent was running when it was taken"
fi

sent=0
for subscription in $(api GET /api/push/subscriptions | jq -r '.[].id'); do
  if api POST "/api/push/subscriptions/$subscription/test" >/dev/null; then
    sent=$((sent + 1))
  fi
done
info "test notifications queued: $sent"
ask_about_push "push still delivers from the restored control plane" push \
  "Did your phone get the test notification just now?"

finish_checks
