# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Sourced by test_mirror.sh and test_mirror_ssh.sh after lib.sh: helpers for
# mirroring tests (peer status, waiting for a peer, comparing snapshots of a
# source with the same snapshots of a replica, stream surgery).

# pstat TARGET UUID JQ_EXPR: one field of the peer's `status --json` entry
pstat() {
	"$MIRRORFS" status --json "$1" 2>/dev/null |
		jq -r --arg u "$2" ".[] | select(.uuid == \$u) | $3"
}

# pstat_line TARGET UUID: a one-line summary for diagnostics
pstat_line() {
	"$MIRRORFS" status --json "$1" 2>&1 |
		jq -c --arg u "$2" '.[] | select(.uuid == $u) |
			{state, last_snapshot, pending, failures, last_error, next_retry_time,
			 syncing_snapshot, syncing_bytes, syncing_total}' 2>&1
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds
wait_until() {
	local n=$(($1 * 5)) i
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# peer_at TARGET UUID SNAP: the peer is idle with SNAP as its last snapshot
peer_at() {
	[ "$(pstat "$1" "$2" '"\(.state) \(.last_snapshot)"')" = "idle $3" ]
}

# wait_peer_at DESC TARGET UUID SNAP SECONDS
wait_peer_at() {
	if wait_until "$5" peer_at "$2" "$3" "$4"; then
		ok "$1"
	else
		not_ok "$1" "peer $3 not idle at '$4' after $5 s" "status: $(pstat_line "$2" "$3")"
	fi
}

# snap_names TARGET: the snapshot names, oldest first, space separated
snap_names() {
	"$MIRRORFS" snap list --json "$1" 2>/dev/null | jq -r '[.[].name] | join(" ")'
}

# newest_snap TARGET
newest_snap() {
	"$MIRRORFS" snap list --json "$1" 2>/dev/null | jq -r 'last.name // empty'
}

# RO_SEQ: counter for read-only replica mountpoints
RO_SEQ=0

# cmp_replica_snaps WHAT SRC_MNT REPLICA NAME...: mount REPLICA read-only
# (the DR view), compare SRC_MNT/.snap/NAME with REPLICA's .snap/NAME for each
# NAME (contents, holes, metadata, xattrs, hard links; the snapshot roots'
# own times are the snapshots' creation times, so not the root), unmount.
# Pause the peer (or make sure nothing is pending) first: a mounted replica
# refuses streams.
cmp_replica_snaps() {
	local what=$1 src=$2 r=$3 dr n
	shift 3
	RO_SEQ=$((RO_SEQ + 1))
	dr=$T/ro$RO_SEQ
	mkdir -p "$dr"
	mfs_mount "$r" "$dr" --read-only
	for n in "$@"; do
		if [ ! -d "$dr/.snap/$n" ]; then
			not_ok "$what: snapshot $n is on the replica" "replica snapshots: $(ls "$dr/.snap" | tr '\n' ' ')"
			continue
		fi
		cmp_tree "$what: replica's snapshot $n equals the source's" "$src/.snap/$n" "$dr/.snap/$n" --ignore root
	done
	mfs_umount "$dr" >/dev/null || true
}

# hello_uuid STREAM_FILE: the source uuid in the stream's HELLO (docs/STREAM.md:
# a 20-byte record header, "MIRRORFS", u32 version, u32 flags, 16-byte uuid)
hello_uuid() {
	od -An -tx1 -j36 -N16 "$1" | tr -d ' \n' |
		sed -E 's/^(.{8})(.{4})(.{4})(.{4})(.{12})$/\1-\2-\3-\4-\5/'
}

# flip_byte FILE OFFSET: xor the byte at OFFSET with 0xff, in place
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 0xff)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc status=none
}

# tree_sum DIR: a digest of names, types, sizes, modes and contents below DIR
# (excluding .mirrorfs), to detect any change to a replica's live tree
tree_sum() {
	(cd "$1" && find . -path ./.mirrorfs -prune -o -printf '%p %y %s %m %l\n' | LC_ALL=C sort &&
		find . -path ./.mirrorfs -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0r cat) | md5sum
}

# serve_pids DAEMON_PID: the `mirrorfs serve` processes the daemon spawned
serve_pids() {
	local p
	for p in $(pgrep -P "$1"); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' serve ' && echo "$p"
	done
}

# shellcheck disable=SC2034 # used by the tests that source this file
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

# assert_contains NEEDLE HAYSTACK DESC: a plain substring (no regex)
assert_contains() {
	if [[ $2 == *"$1"* ]]; then
		ok "$3"
	else
		not_ok "$3" "expected to contain: $1" "                 got: $2"
	fi
}
