#!/usr/bin/env bash
# CL-09: the iPhone home-screen app, walked through with the owner. The script drives an agent through the
# agentfarm API (replies while the app is in the background, then an ending) and checks the server's side
# of the log; the owner follows the printed steps on the phone and answers what only they can see: the
# notification, the resumed log, the heartbeat and the reconnect.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-09-iphone.sh [--url URL] [--answers LIST] [--help]

CL-09 iPhone PWA on iOS 16.4 or later, installed to the Home Screen.
Pass: the "finished" notification arrives while the app is in the background; reopened, the run's log
continues with every reply once (no gap, no repeat) and the server's log has contiguous sequence
numbers; with the app open, a dead connection shows within about 35 s (heartbeat) and it reconnects by
itself.

Needs: curl, jq, the agentfarm app over the tailnet; an iPhone with the app on its Home Screen and
notifications turned on (Settings → Notifications), else everything is a SKIP; about 20 minutes and a
terminal for the steps (without one, the steps are only printed and the answers come from --answers).
Changes: one config and one run (model haiku, seven short turns), stopped and deleted on exit.

EOF
  api_help
  answers_help cl-09.push=y,cl-09.resume=y,cl-09.heartbeat=y,cl-09.reconnect=n
  cat <<'EOF'
  --help                this text

Questions: cl-09.push (notification while in the background?), cl-09.resume (log complete, nothing
repeated, after reopening?), cl-09.heartbeat (lost connection shown within ~35 s?), cl-09.reconnect
(reconnected by itself?).
Exit status: 0 passed (skips allowed), 1 a check failed, 2 usage or prerequisites.
EOF
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; API_URL=$2; shift ;;
    --answers) require_value "$@"; ANSWERS=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done

REPLIES_IN_BACKGROUND=5

# Sends run $1 the follow-up "Reply with the number $2." and waits for the answer.
ask_for_number() {
  local message
  message=$(jq -n --arg text "Reply with the number $2 and nothing else. Do not use any tools." '{text: $text}')
  if ! api POST "/api/runs/$1/messages" "$message" >/dev/null; then
    warn "run $1 did not take the follow-up $2"
    return 0
  fi
  sleep 5
  wait_for_run "$1" waiting_for_input 180 || warn "run $1 is ${RUN_STATE:-unknown} after asking for $2"
}

start_check CL-09
require_api
iphones=$(api GET /api/push/subscriptions | jq '[.[] | select(.service | test("apple"; "i"))] | length')
if [ "$iphones" = 0 ]; then
  for name in "push while in the background" "log resumes without a gap or a repeat" \
    "dead connection shown within ~35 s" "reconnects by itself"; do
    skip "$name" "no iPhone has turned on notifications (app → Settings → Notifications)"
  done
  finish_checks
fi

create_config "$READY_TASK"
launch_run "$CONFIG_ID"
run=$RUN_ID
expect_waiting "$run" "the agent starts"

owner_step "On the iPhone, open agentfarm from the Home Screen and open run $run (config $CONFIG_ID): its log says ready."
owner_step "Go to the Home Screen and leave the app in the background. For the next $REPLIES_IN_BACKGROUND minutes the agent keeps replying."
for ((number = 1; number <= REPLIES_IN_BACKGROUND; number++)); do
  started=$SECONDS
  ask_for_number "$run" "$number"
  info "the agent replied $number"
  if [ $((SECONDS - started)) -lt 60 ]; then
    sleep $((60 - (SECONDS - started)))
  fi
done
owner_step "Still in the background: turn Airplane Mode on, wait 10 seconds, turn it off."
ask_for_number "$run" $((REPLIES_IN_BACKGROUND + 1))
idle_timeout=$(kubectl -n "$SYSTEM_NAMESPACE" get configmap "$SETTINGS_CONFIGMAP" \
  -o jsonpath='{.data.AGENTFARM_IDLE_TIMEOUT}' 2>/dev/null) || idle_timeout=
info "the agent now ends by itself after the idle timeout (${idle_timeout:-300} s): keep the app in the background"
wait_for_run "$run" "$TERMINAL_STATES" $((${idle_timeout:-300} + 180)) || true
info "run $run is $RUN_STATE"
ask_about_push "push while in the background" push \
  "Did the notification \"$CONFIG_ID finished\" arrive while the app was in the background?"

page=$(api GET "/api/runs/$run/logs?after_seq=0&limit=5000")
if printf '%s' "$page" | jq -e '.gap == null and ([.lines[].seq] as $seqs
    | ($seqs | length) > 0 and $seqs == [range($seqs[0]; $seqs[0] + ($seqs | length))]
    and $seqs[-1] == .last_seq)' >/dev/null; then
  pass "the server's log of the run has contiguous sequence numbers"
else
  fail "the server's log of the run has contiguous sequence numbers" "a gap or a repeat in /api/runs/$run/logs"
fi
info "the server has $(printf '%s' "$page" | jq '.lines | length') log lines; the replies were the numbers 1 to $((REPLIES_IN_BACKGROUND + 1))"

owner_step "Open the app (tap the notification, or from the Home Screen) on run $run."
ask_owner "log resumes without a gap or a repeat" resume \
  "Does the run's log show the replies 1 to $((REPLIES_IN_BACKGROUND + 1)), each exactly once, and its ending?"
owner_step "Stay in the app. Turn Airplane Mode on and watch the app for 40 seconds."
ask_owner "dead connection shown within ~35 s" heartbeat \
  "Did the app show within about 35 seconds that it lost its connection?"
owner_step "Turn Airplane Mode off and watch the app."
ask_owner "reconnects by itself" reconnect "Did it reconnect by itself within a few seconds, without a reload?"

finish_checks
