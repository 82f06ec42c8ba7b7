#!/bin/sh
# CL-02's audit of one node's user-data, run by `sh` inside a short-lived pod on the node's own network
# (tests/cluster/cl-02-metadata.sh sends this file as the pod's script). It asks the metadata service for
# the user-data, decodes every cloud-init `write_files` entry (hetzner-k3s ships its scripts there as
# gzip+base64, the burst pool's k3s join script among them), and prints only which kinds of token the
# whole of it holds, never a value:
#   USERDATA bytes=N files=N hcloud=yes|no server_token=yes|no other_token=yes|no agent_token=yes|no shaped=KINDS
# KINDS is `none` or a comma-separated list of the token shapes found (k3s, anthropic, github, tailscale,
# hcloud). POSIX sh, awk, base64 and gzip: busybox (the curl image) and Debian both run it.

USERDATA_URL=${USERDATA_URL:-http://169.254.169.254/hetzner/v1/userdata}

data=$(curl -sf --connect-timeout 5 --max-time 15 "$USERDATA_URL") || {
  echo "USERDATA unreadable"
  exit 0
}

# Each write_files `content:` as one line of base64 without whitespace: the inline form
# (`content: H4sI...`) and the block form (`content: |` with the value on the more indented lines below).
blocks=$(printf '%s\n' "$data" | awk '
  function flush() {
    if (collecting && value != "") print value
    collecting = 0
    value = ""
  }
  {
    line = $0
    indent = match(line, /[^ ]/) - 1
    if (collecting && (line ~ /^[[:space:]]*$/ || indent > key_indent)) {
      gsub(/[[:space:]]/, "", line)
      value = value line
      next
    }
    flush()
    if (match(line, /^[[:space:]]*(-[[:space:]]+)?content:[[:space:]]*/)) {
      rest = substr(line, RSTART + RLENGTH)
      # The column of content: itself (after the dash of a sequence item): the value is indented deeper.
      key_indent = index(line, "content:") - 1
      if (rest ~ /^[|>]/) {
        collecting = 1
      } else if (rest != "") {
        gsub(/[[:space:]"]/, "", rest)
        print rest
      }
    }
  }
  END { flush() }
')

# The decoded files: gzip+base64 first, then plain base64 (cloud-init's `b64`); plain text stays in $data.
decoded=""
files=0
for block in $blocks; do
  text=$(printf '%s' "$block" | base64 -d 2>/dev/null | gzip -dc 2>/dev/null) ||
    text=$(printf '%s' "$block" | base64 -d 2>/dev/null) || text=""
  if [ -n "$text" ]; then
    files=$((files + 1))
    decoded="$decoded
$text"
  fi
done
all="$data
$decoded"

has() { if printf '%s\n' "$all" | grep -Eaiq -- "$1"; then echo yes; else echo no; fi; }

# A k3s token shows its kind in its full form K10<hash>::<user>:<secret> (server or node); a token without
# it cannot be told from the server token, so it counts as one.
token_lines=$(printf '%s\n' "$all" | grep -Eai -- "(K3S_TOKEN|--token|(^|[[:space:]])token:)" |
  grep -Eaiv -- "agent[-_]token" || true)
other=no
if [ -n "$(printf '%s\n' "$token_lines" | grep -av "::node:" | grep -av '^$' || true)" ]; then
  other=yes
fi

# Token shapes, whatever the variable around them is called.
shaped=""
shape() {
  if printf '%s\n' "$all" | grep -Eaq -- "$2"; then
    shaped="${shaped:+$shaped,}$1"
  fi
}
# A k3s token other than an agent (node) token.
if printf '%s\n' "$all" | grep -Eao -- 'K10[0-9a-f]{16,}::[a-z]+:' | grep -aqv -- '::node:$'; then
  shaped="k3s"
fi
shape anthropic 'sk-ant-[A-Za-z0-9_-]{16,}'
shape github '(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})'
shape tailscale 'tskey-[A-Za-z0-9-]{16,}'
# A Hetzner Cloud API token: 64 letters and digits, both cases (a sha256 in hex is lowercase only).
if printf '%s\n' "$all" | grep -Eao -- '[A-Za-z0-9]{64}' | grep -a '[A-Z]' | grep -aq '[a-z]'; then
  shaped="${shaped:+$shaped,}hcloud"
fi

echo "USERDATA bytes=${#data} files=$files hcloud=$(has '(hcloud|hetzner)[-_]token[="[:space:]]*[A-Za-z0-9]{16,}') server_token=$(has '::server:') other_token=$other agent_token=$(has '(::node:|agent[-_]token)') shaped=${shaped:-none}"
