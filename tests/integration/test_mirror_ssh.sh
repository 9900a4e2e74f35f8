#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_mirror_ssh: mirroring over ssh:// (libssh) to a throwaway sshd on
# 127.0.0.1 (DESIGN §5 "Peers", docs/STREAM.md "Transports"):
#
#  - peer bootstrap create: token file 0600, its fields, the authorized_keys
#    line (restrict, forced `mirrorfs serve --replica R`);
#  - the key is forced: an ssh session with it cannot run another command;
#  - malformed, truncated and tampered tokens: exit 1, clear message, no peer;
#  - peer bootstrap import from a file and from standard input, then a
#    snapshot and a sync over ssh: the replica equals the source;
#  - host key mismatch: sync fails with "host key mismatch", sshd sees no
#    authentication attempt;
#  - authentication failure (key removed from authorized_keys), then restored;
#  - network down (sshd stopped ~10 s): the mount keeps working, snapshots
#    queue, status shows the failure and a backing-off retry; after sshd is
#    back the next retry delivers every queued snapshot, in order.
#
# Under CI=true, an sshd that cannot be started is a failure, not a skip.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mirror_lib.sh"
need_fuse
need_cmd jq ssh ssh-keygen base64 ss pgrep
need_tools FSOP FSSTORM
[ -x /usr/sbin/sshd ] || skip_all "needs /usr/sbin/sshd (openssh-server)"
mfs_init

SEED=${MIRROR_SEED:-$$}
RANDOM=$SEED
diag "MIRROR_SEED=$SEED"

# ---- a throwaway sshd ---------------------------------------------------------

S=$T/sshd
mkdir -p "$S" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C hostkey1 -f "$S/hostkey" || bail "ssh-keygen failed"
ssh-keygen -q -t ed25519 -N '' -C hostkey2 -f "$S/hostkey2" || bail "ssh-keygen failed"
: >"$S/authorized_keys"
SSHD_N=0
SSHD_LOG=""

free_port() {
	local p i used
	used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }')
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
	done
	return 1
}
PORT=$(free_port) || bail "no free port"

# sshd_start HOSTKEY: start sshd (daemonized, pid in $S/sshd.pid) with a log
# of its own in $SSHD_LOG; wait until it listens.
sshd_start() {
	local i
	SSHD_N=$((SSHD_N + 1))
	SSHD_LOG=$S/sshd-$SSHD_N.log
	cat >"$S/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $PORT
		HostKey $1
		PidFile $S/sshd.pid
		AuthorizedKeysFile $S/authorized_keys
		StrictModes no
		UsePAM no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		LogLevel VERBOSE
	EOF
	rm -f "$S/sshd.pid"
	/usr/sbin/sshd -f "$S/sshd_config" -E "$SSHD_LOG" || return 1
	for ((i = 0; i < 100; i++)); do
		[ -s "$S/sshd.pid" ] && ss -Hltn "sport = :$PORT" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

# descendants PID: every process below PID, deepest first
descendants() {
	local c
	for c in $(pgrep -P "$1"); do
		descendants "$c"
		echo "$c"
	done
}

# sshd_drop: kill every connection of our sshd (the per-connection sshd
# processes and the commands they run), keeping the listener: a dropped network
sshd_drop() {
	local pid
	[ -s "$S/sshd.pid" ] || return 0
	pid=$(cat "$S/sshd.pid")
	# shellcheck disable=SC2046
	kill -KILL $(descendants "$pid") 2>/dev/null
	return 0
}

# sshd_stop: the listener too
sshd_stop() {
	local pid
	[ -s "$S/sshd.pid" ] || return 0
	pid=$(cat "$S/sshd.pid")
	sshd_drop
	kill -TERM "$pid" 2>/dev/null
	wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
	rm -f "$S/sshd.pid"
}
atexit sshd_stop

if ! sshd_start "$S/hostkey"; then
	log=$(cat "$SSHD_LOG" 2>/dev/null)
	[ "${CI:-}" = true ] && bail "cannot start sshd on 127.0.0.1:$PORT: $log"
	skip_all "cannot start sshd on 127.0.0.1:$PORT: $log"
fi
ok "a throwaway sshd listens on 127.0.0.1:$PORT"
FP1=$(ssh-keygen -lf "$S/hostkey.pub" | awk '{ print $2 }')
FP2=$(ssh-keygen -lf "$S/hostkey2.pub" | awk '{ print $2 }')

# ---------------------------------------------------------------------------
section "peer bootstrap create"
R=$T/r
mkdir "$R"
bootstrap() {   # bootstrap REPLICA SITE OUTPUT
	"$MIRRORFS" peer bootstrap create "$1" --site "$2" --host 127.0.0.1 --port "$PORT" --user root \
		--host-key-file "$S/hostkey.pub" --authorized-keys "$S/authorized_keys" --output "$3"
}
out=$(bootstrap "$R" dr1 "$T/token" 2>&1)
assert_eq 0 "$?" "bootstrap create exits 0 ($out)"
assert_eq 600 "$(stat -c %a "$T/token")" "the token file has mode 0600"
tok=$(base64 -d "$T/token" 2>/dev/null)
check "the token is base64 of a JSON object" jq -e 'type == "object"' <<<"$tok"
assert_eq "127.0.0.1 $PORT root $R dr1" "$(jq -r '"\(.host) \(.port) \(.user) \(.path) \(.site)"' <<<"$tok")" "token: host, port, user, path, site"
assert_eq "$FP1" "$(jq -r .host_key <<<"$tok")" "token: host_key is the fingerprint of the host key"
check "token: an OpenSSH private key" jq -e '.key | startswith("-----BEGIN OPENSSH PRIVATE KEY-----")' <<<"$tok"
assert_eq 1 "$(wc -l <"$S/authorized_keys")" "one line added to authorized_keys"
line=$(head -n 1 "$S/authorized_keys")
assert_match "^restrict,command=\"[^\"]*mirrorfs serve --replica '?$R'?\" ssh-ed25519 [A-Za-z0-9+/=]+" "$line" "authorized_keys: restrict, forced serve --replica R"
jq -r .key <<<"$tok" >"$T/key"
chmod 600 "$T/key"
pub=$(ssh-keygen -y -f "$T/key" | awk '{ print $2 }')
assert_eq "$pub" "$(grep -o "ssh-ed25519 [A-Za-z0-9+/=]*" <<<"$line" | cut -d" " -f2)" "the authorized key is the token's key"

# ---------------------------------------------------------------------------
section "the key is forced: no other command"
SSH=(ssh -i "$T/key" -p "$PORT" -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no
	-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1)
out=$(timeout 20 "${SSH[@]}" echo hi </dev/null 2>&1)
assert_ne "hi" "$out" "ssh with the key cannot run 'echo hi' (got: $(head -c 100 <<<"$out"))"
out=$(timeout 20 "${SSH[@]}" 'touch /tmp/mirrorfs-forced-cmd-escaped' </dev/null 2>&1)
check "ssh with the key cannot create a file" test ! -e /tmp/mirrorfs-forced-cmd-escaped
rm -f /tmp/mirrorfs-forced-cmd-escaped
check "sshd ran the forced command" grep -q "forced-command" "$SSHD_LOG"
out=$(timeout 20 "${SSH[@]}" -tt echo hi </dev/null 2>&1)
assert_match "PTY allocation request failed|^$" "$(grep -i pty <<<"$out" | head -n 1)" "restrict: no pty"

# ---------------------------------------------------------------------------
section "malformed, truncated and tampered tokens"
MS=$T/ms B=$T/b
mkdir "$MS" "$B"
mfs_mount "$B" "$MS"
mkdir "$T/bad"
raw=$(tr -d '\n' <"$T/token")
len=${#raw}
# flip_b64 STR POS: another base64 letter at POS
flip_b64() {
	local c=${1:$2:1} n
	if [ "$c" = A ]; then n=B; else n=A; fi
	printf '%s%s%s' "${1:0:$2}" "$n" "${1:$(($2 + 1))}"
}
flip_b64 "$raw" 5 >"$T/bad/flipped-head"
flip_b64 "$raw" $((len / 2)) >"$T/bad/flipped-middle"
printf '%s' "${raw:0:$((len / 2))}" >"$T/bad/cut-half"
printf '%s' "${raw:0:$((len - 7))}" >"$T/bad/cut-end"
printf 'this is not json at all\n' | base64 -w0 >"$T/bad/not-json"
printf '%s' "$raw" | tr 'A-Za-z' 'N-ZA-Mn-za-m' >"$T/bad/rot13"
printf '!!!! not base64 !!!!' >"$T/bad/not-base64"
: >"$T/bad/empty"
for f in host port user host_key path key; do
	jq -c "del(.$f)" <<<"$tok" | base64 -w0 >"$T/bad/missing-$f"
done
jq -c '.port = "many"' <<<"$tok" | base64 -w0 >"$T/bad/port-string"
jq -c '[.]' <<<"$tok" | base64 -w0 >"$T/bad/json-array"
jq -c --arg fp "$FP2" '.host_key = $fp' <<<"$tok" | base64 -w0 >"$T/bad/other-host-key"
jq -c '.host_key = "SHA256:tampered"' <<<"$tok" | base64 -w0 >"$T/bad/garbage-host-key"
for f in "$T"/bad/*; do
	n=$(basename "$f")
	out=$(timeout 60 "$MIRRORFS" peer bootstrap import "$MS" "$f" 2>&1)
	rc=$?
	if [ "$rc" = 1 ] && [[ $out =~ ^mirrorfs:\ .*[a-z]{3} ]] && [ "$(wc -l <<<"$out")" -le 3 ]; then
		ok "token $n: exit 1, $out"
	else
		not_ok "token $n: exit 1 with a clear message" "status $rc, output:" "$out"
	fi
done
out=$(timeout 60 "$MIRRORFS" peer bootstrap import "$MS" - <"$T/bad/other-host-key" 2>&1)
assert_eq 1 "$?" "a tampered token on standard input: exit 1"
# its check no longer matches: refused as tampered before any connection
assert_match "tampered" "$out" "... refused as tampered, before connecting ($out)"
assert_eq 0 "$("$MIRRORFS" peer list --json "$MS" | jq length)" "no bad token added a peer"
assert_eq "" "$(ls "$R")" "no bad token touched the replica"
assert_eq "" "$(find "$B/.mirrorfs" -path '*key*' -type f 2>/dev/null)" "no bad token left a private key behind"

# ---------------------------------------------------------------------------
section "peer bootstrap import, then a sync over ssh"
out=$("$MIRRORFS" peer bootstrap import "$MS" "$T/token" 2>"$T/import.err")
rc=$?
assert_eq 0 "$rc" "bootstrap import from a file exits 0 ($(cat "$T/import.err"))"
P1=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$P1" "it prints the peer's UUID"
assert_match "ssh://root@127.0.0.1:$PORT$R" "$("$MIRRORFS" peer list "$MS")" "peer list shows the ssh:// URL"
assert_eq "$FP1 dr1" "$("$MIRRORFS" peer list --json "$MS" | jq -r '.[0] | "\(.host_key) \(.site)"')" "the host key is pinned, the site kept"
keys=$(find "$B/.mirrorfs" -path '*key*' -type f 2>/dev/null)
assert_eq 1 "$(grep -c . <<<"$keys")" "the import stored one key file ($keys)"
assert_eq 600 "$(stat -c %a "$keys" 2>&1)" "... with mode 0600"
out=$("$MIRRORFS" peer bootstrap import "$MS" "$T/token" 2>&1)
assert_eq 1 "$?" "importing the same token again exits 1 ($out)"
assert_eq 1 "$(find "$B/.mirrorfs" -path '*key*' -type f | grep -c .)" "... and stores no second key file"

R2=$T/r2
mkdir "$R2"
bootstrap "$R2" dr2 "$T/token2" >/dev/null 2>&1
out=$("$MIRRORFS" peer bootstrap import "$MS" - <"$T/token2" 2>"$T/import.err")
assert_eq 0 "$?" "bootstrap import from standard input ('-') exits 0 ($(cat "$T/import.err"))"
P2=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$P2" "it prints the peer's UUID"
assert_eq 2 "$(wc -l <"$S/authorized_keys")" "two keys authorized"

mkdir "$MS/w"
check "fsstorm on the source" "$FSSTORM" --seed "$SEED" --ops 400 "$MS/w"
fsop pwrite "$MS/bigfile" 0 $((5 * 1048576 + 17)) >/dev/null
fsop pwrite "$MS/sparse" $((64 * 1048576)) 1000 >/dev/null
setfattr -n user.x -v y "$MS/bigfile"
ln -s w "$MS/link"
mkfifo "$MS/fifo"
out=$("$MIRRORFS" sync --snap-pattern first "$MS" 2>&1)
assert_eq 0 "$?" "sync over ssh exits 0 ($out)"
peer_at "$MS" "$P1" first && peer_at "$MS" "$P2" first
assert_eq 0 "$?" "both peers are at 'first'"
"$MIRRORFS" pause "$MS" "$P2" >/dev/null
cmp_replica_snaps "over ssh" "$MS" "$R" first
cmp_replica_snaps "over ssh, imported from stdin" "$MS" "$R2" first
check "remove the second peer" "$MIRRORFS" peer remove "$MS" "$P2"
check "sshd log: the mirror logged in with the token's key" grep -q "Accepted publickey for root" "$SSHD_LOG"

# change TEXT: a change for the next snapshot
change() { printf '%s\n' "$1" >>"$MS/changes"; }

# ---------------------------------------------------------------------------
section "host key mismatch"
sshd_stop
sshd_start "$S/hostkey2" || bail "cannot restart sshd with another host key: $(cat "$SSHD_LOG")"
change hk
out=$("$MIRRORFS" sync --snap-pattern hk "$MS" 2>&1)
assert_eq 1 "$?" "sync to a server with another host key exits 1"
if wait_until 20 bash -c '[[ $("$1" status --json "$2" | jq -r ".[0].last_error") == *"host key mismatch"* ]]' _ "$MIRRORFS" "$MS"; then
	ok "status last_error: host key mismatch"
else
	not_ok "status last_error: host key mismatch" "sync said: $out" "status: $(pstat_line "$MS" "$P1")"
fi
err=$(pstat "$MS" "$P1" .last_error)
assert_contains "expected $FP1, got $FP2" "$err" "the error names both fingerprints"
assert_eq failed "$(pstat "$MS" "$P1" .state)" "status: failed"
auth=$(grep -E "Accepted|Failed|Postponed|publickey|[Aa]uthenticat" "$SSHD_LOG")
assert_eq "" "$auth" "sshd saw no authentication attempt (only the key exchange)"
check "sshd saw the connection" grep -q "Connection from 127.0.0.1" "$SSHD_LOG"
sshd_stop
sshd_start "$S/hostkey" || bail "cannot restart sshd: $(cat "$SSHD_LOG")"
wait_peer_at "with the right host key back, the next retry converges to hk" "$MS" "$P1" hk 30

# ---------------------------------------------------------------------------
section "authentication failure"
cp "$S/authorized_keys" "$S/authorized_keys.saved"
grep -v "mirrorfs:dr1\$" "$S/authorized_keys.saved" >"$S/authorized_keys"
assert_eq 1 "$(wc -l <"$S/authorized_keys")" "the dr1 key is removed from authorized_keys"
sshd_drop
change auth
out=$("$MIRRORFS" sync --snap-pattern auth "$MS" 2>&1)
assert_eq 1 "$?" "sync without an authorized key exits 1"
if wait_until 20 bash -c '[[ $("$1" status --json "$2" | jq -r ".[0].last_error") == *authentic* ]]' _ "$MIRRORFS" "$MS"; then
	ok "status last_error: authentication ($(pstat "$MS" "$P1" .last_error))"
else
	not_ok "status last_error names authentication" "sync said: $out" "status: $(pstat_line "$MS" "$P1")"
fi
assert_eq failed "$(pstat "$MS" "$P1" .state)" "status: failed"
cp "$S/authorized_keys.saved" "$S/authorized_keys"
wait_peer_at "with the key restored, the next retry converges to auth" "$MS" "$P1" auth 30

# ---------------------------------------------------------------------------
section "network down: sshd stopped for ~10 s while snapshots are taken"
sshd_stop
down=()
samples=()
mount_ok=1
t0=$(date +%s)
for ((i = 1; i <= 5; i++)); do
	if ! printf 'while down %s\n' "$i" >"$MS/down$i" || ! fsop pwrite "$MS/down$i" 4096 70000 >/dev/null; then
		mount_ok=0
	fi
	if mkdir "$MS/.snap/down$i"; then
		down+=("down$i")
	else
		mount_ok=0
	fi
	for ((j = 0; j < 8; j++)); do
		samples+=("$(pstat "$MS" "$P1" '"\(.failures) \(.last_error_time_ns // .last_error_time) \(.next_retry_time)"')")
		sleep 0.25
	done
done
assert_eq 1 "$mount_ok" "writes and mkdir .snap/NAME work through the mount while the peer is unreachable"
assert_eq 5 "${#down[@]}" "5 snapshots taken while down"
e=$("$MIRRORFS" status --json "$MS" | jq -c '.[0]')
diag "after $(($(date +%s) - t0)) s down: $e"
assert_eq failed "$(jq -r .state <<<"$e")" "status: failed"
assert_match "refused|unreachable|connect" "$(jq -r .last_error <<<"$e")" "status: the error says why"
check "status: a next retry time" jq -e '.next_retry_time | type == "string"' <<<"$e"
assert_eq 5 "$(jq -r .pending <<<"$e")" "status: the 5 snapshots are pending"
# the gaps between a failure and its next retry, one per failure seen
gaps=$(printf '%s\n' "${samples[@]}" | sort -u -n | while read -r f le nr; do
	[ "$nr" = null ] && continue
	a=$(date -d "$le" +%s.%N 2>/dev/null) || a=$(awk -v n="$le" 'BEGIN { printf "%.3f", n / 1e9 }')
	b=$(date -d "$nr" +%s.%N)
	awk -v f="$f" -v a="$a" -v b="$b" 'BEGIN { printf "%d:%.0f\n", f, b - a }'
done | sort -t: -k1,1n -u)
diag "failures:gap seconds: $(tr '\n' ' ' <<<"$gaps")"
ngaps=$(grep -c . <<<"$gaps")
assert_ge "$ngaps" 3 "at least 3 failed attempts observed in ~10 s"
if awk -F: 'NR > 1 && $2 <= prev { bad = 1 } { prev = $2 } $2 > 300 { bad = 1 } END { exit bad }' <<<"$gaps"; then
	ok "the retry gaps increase and stay <= 300 s (capped)"
else
	not_ok "the retry gaps increase and stay <= 300 s" "failures:gap: $(tr '\n' ' ' <<<"$gaps")"
fi
sshd_start "$S/hostkey" || bail "cannot restart sshd: $(cat "$SSHD_LOG")"
t1=$(date +%s)
retry=$(pstat "$MS" "$P1" .next_retry_time)
wait_peer_at "the next retry (no sync command) delivers everything" "$MS" "$P1" "${down[-1]}" 60
diag "converged $(($(date +%s) - t1)) s after sshd came back (next retry was $retry)"
names=$(snap_names "$R")
assert_eq "$(snap_names "$MS")" "$names" "every queued snapshot arrived, in order (the replica's list is the source's)"
assert_eq "first hk auth ${down[*]}" "$names" "the replica's snapshots"
"$MIRRORFS" pause "$MS" >/dev/null
cmp_replica_snaps "after the outage" "$MS" "$R" first hk auth "${down[@]}"

# ---------------------------------------------------------------------------
section "cleanup"
mfs_umount "$MS"
check "mirrorfs check of the replica" "$MIRRORFS" check "$R"

done_testing
