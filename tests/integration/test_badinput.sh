#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_badinput: bad arguments and bad state get one clear line
# ("mirrorfs: cannot mount '...': why"), a non-zero exit, no mount and no
# partial effect (no state directory created, a damaged journal.db left
# byte for byte as it was); usage errors exit 2.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd sqlite3 cmp timeout
need_tools
mfs_init

# try_mount MODE BACKING MNT [OPTIONS...]: run `mirrorfs mount` (MODE "bg":
# daemonizing; "fg": with -f) and leave its status in $RC, its stderr in $ERR,
# and whether anything new got mounted under $T in $MOUNTED (then unmounted).
try_mount() {
	local mode=$1 b=$2 m=$3 before pid i
	shift 3
	before=$(mounts_below "$T")
	if [ "$mode" = bg ]; then
		timeout 20 "$MIRRORFS" mount "$@" "$b" "$m" >"$T/out" 2>"$T/err"
		RC=$?
	else
		"$MIRRORFS" mount -f "$@" "$b" "$m" >"$T/out" 2>"$T/err" &
		pid=$!
		RC=running
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			fusermount3 -u "$m" 2>/dev/null
			wait_exit "$pid" 5 || kill -KILL "$pid"
		fi
		wait "$pid"
		RC=$?
	fi
	ERR=$(cat "$T/err")
	MOUNTED=$(comm -13 <(printf '%s\n' "$before" | sort) <(mounts_below "$T" | sort))
	local mp
	for mp in $MOUNTED; do
		fusermount3 -u "$mp" 2>/dev/null || fusermount3 -u -z "$mp"
	done
}

# mount_fails DESC BACKING MNT [OPTIONS...]: both modes must fail cleanly
mount_fails() {
	local desc=$1 mode
	shift
	for mode in bg fg; do
		try_mount "$mode" "$@"
		local what="$desc ($([ $mode = fg ] && echo "mount -f" || echo "mount"))"
		if [ "$RC" != 0 ] && [ "$RC" != 124 ] && [ -z "$MOUNTED" ] &&
			[ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && [[ $ERR == "mirrorfs: cannot mount "* ]]; then
			ok "$what: exit $RC, $ERR"
		else
			not_ok "$what: fails with one line 'mirrorfs: cannot mount ...' and mounts nothing" \
				"exit status: $RC" "stderr: $ERR" "mounted: ${MOUNTED:-nothing}"
		fi
	done
}

# no_state DESC DIR: DIR/.mirrorfs was not created
no_state() {
	if [ -e "$2/.mirrorfs" ]; then
		not_ok "$1: no state directory created in $2" "$(ls -la "$2/.mirrorfs")"
	else
		ok "$1: no state directory created"
	fi
}

# usage_fails DESC EXPECTED_STATUS CMD_ARGS...
exits_with() {
	local desc=$1 want=$2 out rc
	shift 2
	out=$(timeout 20 "$MIRRORFS" "$@" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ] && { [ "$want" = 0 ] || [[ $out == *mirrorfs:* || $out == *usage* ]]; }; then
		ok "$desc: exit $rc"
	else
		not_ok "$desc: exits $want with a message" "exit status $rc" "$out"
	fi
}

# a journal that works, to damage in copies
mkjournal() {
	mkdir -p "$1"
	mfs_mount "$1" "$T/mnt"
	echo data >"$T/mnt/file"
	mfs_umount "$T/mnt"
}

mkdir "$T/mnt" "$T/b1" "$T/b2" "$T/b2/inner" "$T/m3" "$T/m3/b" "$T/m5" "$T/b5"
echo x >"$T/file"

section "arguments"
mount_fails "missing backing dir" "$T/nonexistent" "$T/mnt"
mount_fails "missing mountpoint" "$T/b1" "$T/nomnt"
no_state "missing mountpoint" "$T/b1"
mount_fails "backing is a file" "$T/file" "$T/mnt"
mount_fails "mountpoint is a file" "$T/b1" "$T/file"
no_state "mountpoint is a file" "$T/b1"
mount_fails "backing and mountpoint are the same" "$T/b1" "$T/b1"
mount_fails "backing and mountpoint are the same (spelled differently)" "$T/b1" "$T/b1/../b1/"
no_state "same dir" "$T/b1"
mount_fails "mountpoint inside the backing dir" "$T/b2" "$T/b2/inner"
no_state "mountpoint inside backing" "$T/b2"
mount_fails "backing dir inside the mountpoint" "$T/m3/b" "$T/m3"
no_state "backing inside mountpoint" "$T/m3/b"
mount_fails "unknown -o option" "$T/b1" "$T/mnt" -o no_such_option_xyz
no_state "unknown -o option" "$T/b1"

section "already mounted"
mkdir "$T/b4" "$T/m4" "$T/m4b"
mfs_mount "$T/b4" "$T/m4"
echo alive >"$T/m4/f"
mount_fails "a second mount of the same backing dir" "$T/b4" "$T/m4b"
assert_eq alive "$(cat "$T/m4/f" 2>&1)" "the first mount still works"
mfs_umount "$T/m4"

section "state directory not writable"
bind_ro "$T/b5" || bail "cannot make a read-only bind mount"
mount_fails "read-only backing dir without a journal" "$T/b5" "$T/m5"
unbind "$T/b5"
mkjournal "$T/b6"
cp -a "$T/b6/.mirrorfs" "$T/state6.orig"
bind_ro "$T/b6/.mirrorfs" || bail "cannot make a read-only bind mount"
mount_fails "read-only state directory" "$T/b6" "$T/m5"
unbind "$T/b6/.mirrorfs"
check "the journal is untouched" diff -r "$T/state6.orig" "$T/b6/.mirrorfs"

section "a journal from a newer schema"
mkjournal "$T/b7"
check "set schema_version to 999" sqlite3 "$T/b7/.mirrorfs/journal.db" "update meta set value=999 where key='schema_version'"
assert_eq 999 "$(sqlite3 "$T/b7/.mirrorfs/journal.db" "select value from meta where key='schema_version'")" "schema_version is 999"
cp "$T/b7/.mirrorfs/journal.db" "$T/journal7.orig"
mount_fails "newer schema" "$T/b7" "$T/m5"
check "journal.db is byte-identical after the refused mounts" cmp "$T/journal7.orig" "$T/b7/.mirrorfs/journal.db"
exits_with "mirrorfs journal on a newer schema" 1 journal "$T/b7" --json
exits_with "mirrorfs check on a newer schema" 1 check "$T/b7"
check "journal.db is still byte-identical" cmp "$T/journal7.orig" "$T/b7/.mirrorfs/journal.db"

section "a corrupt journal"
mkjournal "$T/b8"
dd if=/dev/urandom of="$T/b8/.mirrorfs/journal.db" bs=100 count=1 conv=notrunc status=none
cp "$T/b8/.mirrorfs/journal.db" "$T/journal8.orig"
mount_fails "corrupt journal.db (first 100 bytes garbage)" "$T/b8" "$T/m5"
check "journal.db is byte-identical after the refused mounts" cmp "$T/journal8.orig" "$T/b8/.mirrorfs/journal.db"
exits_with "mirrorfs journal on a corrupt journal" 1 journal "$T/b8" --json
exits_with "mirrorfs check on a corrupt journal" 1 check "$T/b8"
check "journal.db is still byte-identical" cmp "$T/journal8.orig" "$T/b8/.mirrorfs/journal.db"

section "command line"
mkdir "$T/plain"
exits_with "unknown subcommand" 2 no-such-command
exits_with "no subcommand" 2
exits_with "mount without arguments" 2 mount
exits_with "mount with one argument" 2 mount "$T/b1"
exits_with "mount with three arguments" 2 mount "$T/b1" "$T/mnt" "$T/m5"
exits_with "mount with an unknown flag" 2 mount --no-such-flag "$T/b1" "$T/mnt"
exits_with "journal without arguments" 2 journal
exits_with "journal --since with a non-number" 2 journal --since abc "$T/b4"
exits_with "mirrorfs --help" 0 --help
exits_with "mirrorfs mount --help" 0 mount --help
exits_with "mirrorfs journal --help" 0 journal --help
exits_with "journal of a directory that is not mirrorfs" 1 journal "$T/plain"
no_state "journal of a plain directory" "$T/plain"
exits_with "journal of a missing directory" 1 journal "$T/nonexistent"
exits_with "check of a directory that is not mirrorfs" 1 check "$T/plain"
no_state "check of a plain directory" "$T/plain"
exits_with "umount of something that is not a mirrorfs mount" 1 umount "$T/plain"
assert_eq "" "$(mounts_below "$T")" "nothing is left mounted"

done_testing
