#!/usr/bin/env bash
# CL-08: agents stay logged in to Claude for longer than an access token lives. N agents launched through
# the agentfarm API are kept in conversation (a one-line follow-up every few minutes; an agent that ends
# is replaced) for H hours, and every log line and ending is searched for "Not logged in" and its kin. Run
# once per credential mode to compare them: the token mode must show none; any in the shared-volume mode
# confirms T3 (shared credentials race on the single-use refresh token).

set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<'EOF'
Usage: tests/cluster/cl-08-oauth-soak.sh [--url URL] [--agents N] [--hours H] [--interval MINUTES]
                                         [--credential-mode token|shared-volume] [--help]

CL-08 OAuth soak (hours: leave it running, e.g. in tmux).
Pass: over H hours (default 10, past the ~8 h access-token lifetime) N agents (default 8) in
conversation show no "Not logged in", "/login", expired-token or authentication error in any log line
or ending. The shared-volume mode reports any as FAIL: it confirms T3.

Needs: curl, jq, the agentfarm app over the tailnet (this machine must stay awake and connected);
AGENTFARM_MAX_RUNNING and the ResourceQuota agent-quota large enough for N agents; for shared-volume, the
opt-in shared ~/.claude (infra/README.md, "Claude credentials").
Changes: one config and N runs at a time (model haiku, max_turns 1000), each sent "Reply with the single
word ok." every MINUTES minutes: about N × H × 60 / MINUTES short turns of your Claude plan's usage.
Everything is stopped and deleted on exit.

EOF
  api_help
  cat <<'EOF'
  --agents N            agents at once (default 8)
  --hours H             how long, whole hours (default 10)
  --interval MINUTES    between follow-ups (default 4; keep it under AGENTFARM_IDLE_TIMEOUT, 5 minutes
                        by default, so that conversations stay alive)
  --credential-mode M   token (default: CLAUDE_CODE_OAUTH_TOKEN) or shared-volume
  --help                this text

Exit status: 0 passed, 1 a check failed, 2 usage or prerequisites.
EOF
}

AGENTS=8
HOURS=10
INTERVAL=4
CREDENTIAL_MODE=token
while [ "$#" -gt 0 ]; do
  case "$1" in
    --url) require_value "$@"; API_URL=$2; shift ;;
    --agents) require_value "$@"; AGENTS=$2; shift ;;
    --hours) require_value "$@"; HOURS=$2; shift ;;
    --interval) require_value "$@"; INTERVAL=$2; shift ;;
    --credential-mode) require_value "$@"; CREDENTIAL_MODE=$2; shift ;;
    *) help_or_unknown "$1" ;;
  esac
  shift
done
for number in "$AGENTS" "$HOURS" "$INTERVAL"; do
  case "$number" in
    "" | *[!0-9]* | 0) die 2 "--agents, --hours and --interval take whole numbers above 0" ;;
  esac
done
case "$CREDENTIAL_MODE" in
  token | shared-volume) ;;
  *) die 2 "--credential-mode is token or shared-volume" ;;
esac

# What Claude Code says when it has no valid login.
LOGGED_OUT='Not logged in|/login|OAuth token (has )?expired|authentication_error|Invalid API key'
FOLLOW_UP='{"text": "Reply with the single word ok. Do not use any tools."}'

SLOT_RUNS=()
SLOT_SEQS=()
LOGOUTS=0
ENDINGS=0
EVIDENCE=

# Reads slot $1's new log lines; counts and keeps those that say the agent was logged out.
scan_slot() {
  local slot=$1 run=${SLOT_RUNS[$1]} page found newest
  if [ -z "$run" ]; then
    return 0
  fi
  while :; do
    page=$(api GET "/api/runs/$run/logs?after_seq=${SLOT_SEQS[slot]}&limit=5000") || return 0
    found=$(printf '%s' "$page" | jq -r --arg pattern "$LOGGED_OUT" \
      '.lines[] | select(.text | test($pattern; "i")) | "\(.seq): \(.text[0:160])"')
    if [ -n "$found" ]; then
      LOGOUTS=$((LOGOUTS + $(printf '%s\n' "$found" | wc -l)))
      EVIDENCE="$EVIDENCE$(printf '\n    run %s %s' "$run" "$found")"
    fi
    newest=$(printf '%s' "$page" | jq --argjson after "${SLOT_SEQS[slot]}" '[.lines[].seq] | max // $after')
    if [ "$newest" = "${SLOT_SEQS[slot]}" ]; then
      return 0
    fi
    SLOT_SEQS[slot]=$newest
  done
}

# Launches a new agent in slot $1 (left empty, to be filled next round, if the API refuses).
fill_slot() {
  SLOT_RUNS[$1]=
  SLOT_SEQS[$1]=0
  if launch_run "$CONFIG_ID"; then
    SLOT_RUNS[$1]=$RUN_ID
  fi
}

start_check CL-08
require_api
max_running=$(api GET /api/info | jq '.max_running')
if [ "$max_running" -lt "$AGENTS" ]; then
  die 2 "agentfarm runs at most $max_running agents at once (AGENTFARM_MAX_RUNNING): raise it to $AGENTS, or pass --agents $max_running"
fi

create_config "$READY_TASK" "$(jq -n --arg mode "$CREDENTIAL_MODE" --argjson hours "$HOURS" \
  '{credential_mode: $mode, max_turns: 1000, timeout_minutes: ([($hours + 1) * 60, 1440] | min)}')"
for ((slot = 0; slot < AGENTS; slot++)); do
  fill_slot "$slot"
done
info "$AGENTS agents in $CREDENTIAL_MODE mode for $HOURS h, a follow-up every $INTERVAL min: ${SLOT_RUNS[*]}"

started=$SECONDS
end=$((SECONDS + HOURS * 3600))
while [ "$SECONDS" -lt "$end" ]; do
  sleep $((INTERVAL * 60))
  for ((slot = 0; slot < AGENTS; slot++)); do
    scan_slot "$slot"
    run=${SLOT_RUNS[slot]}
    if [ -z "$run" ]; then
      fill_slot "$slot"
      continue
    fi
    state=$(run_field "$run" .state) || continue
    case "$state" in
      waiting_for_input) api POST "/api/runs/$run/messages" "$FOLLOW_UP" >/dev/null || true ;;
      succeeded | failed | stopped | lost)
        ending=$(api GET "/api/runs/$run" | jq -r '[.reason // "", .last_error // ""] | join(" ")') || ending=
        if printf '%s' "$ending" | grep -Eqi "$LOGGED_OUT"; then
          LOGOUTS=$((LOGOUTS + 1))
          EVIDENCE="$EVIDENCE$(printf '\n    run %s ended %s: %s' "$run" "$state" "$ending")"
        fi
        ENDINGS=$((ENDINGS + 1))
        fill_slot "$slot"
        ;;
    esac
  done
  printf '    %d min: %d agents, %d replaced so far, %d logged-out signs\n' \
    $(((SECONDS - started) / 60)) "$AGENTS" "$ENDINGS" "$LOGOUTS"
done
for ((slot = 0; slot < AGENTS; slot++)); do
  scan_slot "$slot"
done

name="no \"Not logged in\" over $HOURS h with $AGENTS agents ($CREDENTIAL_MODE mode)"
if [ "$LOGOUTS" = 0 ]; then
  pass "$name"
elif [ "$CREDENTIAL_MODE" = shared-volume ]; then
  fail "$name" "$LOGOUTS signs: T3 confirmed (shared credentials log agents out):$EVIDENCE"
else
  fail "$name" "$LOGOUTS signs:$EVIDENCE"
fi

finish_checks
