#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_posix: differential POSIX conformance. tests/tools/posixdiff runs a
# fixed list of ~300 small checks (errnos, modes, owners, st_nlink, whether
# m/ctime changed; many as uid 65534 or 1000) and prints one line per check.
# The kernel's own behaviour on a plain directory of the backing filesystem
# is the reference, and the mount must answer every check the same:
#
#   1. the main suite in the mount root (where the hidden state directory
#      and .snap live) against an empty plain directory;
#   2. the read-only suite on a snapshot against a read-only bind mount of
#      the same tree (reads work, every mutation fails with EROFS);
#   3. the read-only suite on a -o ro mount against the same bind mount.
#
# What cannot agree through FUSE is skipped by posixdiff itself, on both
# sides, with the reason in its table (docs/HACKING.md, "POSIX
# conformance"). A difference listed in KNOWN below is a mirrorfs bug whose
# fix is outside fs/: it is reported as TODO, not as a failure, and the
# test fails once it no longer differs, so that the entry goes too.

. "$(dirname "$0")/lib.sh"
need_fuse
need_tools FSOP POSIXDIFF
mfs_init

B=$T/backing M=$T/mnt R=$T/ref
mkdir "$B" "$M" "$R"

declare -A KNOWN=()
# (none at present)

# todo DESC REASON: a known difference (TAP TODO: not a failure)
todo() {
	T_N=$((T_N + 1))
	printf 'not ok %d - %s # TODO %s\n' "$T_N" "$1" "$2"
}

# posixdiff_run OUT ARGS...: run posixdiff, its output to OUT; a failed
# run (usage, a crash, a setup it could not do) fails the test here
posixdiff_run() {
	local out=$1 rc
	shift
	"$POSIXDIFF" "$@" >"$out" 2>"$out.err"
	rc=$?
	if [ "$rc" != 0 ] || [ -s "$out.err" ]; then
		not_ok "posixdiff $*" "exit status $rc" "$(tail -n 5 "$out.err")"
		return 1
	fi
}

# compare WHAT REF MNT: the two outputs, check by check
compare() {
	local what=$1 i name known
	local -a ref mnt
	mapfile -t ref <"$2"
	mapfile -t mnt <"$3"
	if [ "${#ref[@]}" -lt 20 ] || [ "${#ref[@]}" != "${#mnt[@]}" ]; then
		not_ok "$what: both runs print every check" "reference: ${#ref[@]} lines, mirrorfs: ${#mnt[@]}"
		return 1
	fi
	for ((i = 0; i < ${#ref[@]}; i++)); do
		name=${ref[i]%%:*}
		known=${KNOWN[$name]:-}
		if [ "${ref[i]}" == "${mnt[i]}" ]; then
			if [ -n "$known" ]; then
				not_ok "$what: $name: the known difference is gone: take it out of KNOWN" \
					"both: ${ref[i]}"
			else
				ok "$what: ${ref[i]}"
			fi
		elif [ -n "$known" ]; then
			todo "$what: $name" "$known"
			diag "reference: ${ref[i]}" "mirrorfs:  ${mnt[i]}"
		else
			not_ok "$what: $name: as on a plain directory" "reference: ${ref[i]}" \
				"mirrorfs:  ${mnt[i]:-(nothing)}"
		fi
	done
}

# The checks run as uid 65534 and 1000 too: allow_other. A FUSE mount is
# nosuid,nodev unless told otherwise, the plain directory's filesystem is
# not (open of a device node: EACCES): dev,suid (README, "Mounting").
OPTS=allow_other,dev,suid

section "the main suite: the mount root against a plain directory"
posixdiff_run "$T/ref.txt" "$R" || bail "posixdiff failed on a plain directory"
mfs_mount "$B" "$M" -o "$OPTS"
posixdiff_run "$T/mnt.txt" "$M"
compare "main" "$T/ref.txt" "$T/mnt.txt"

section ".snap in the root"
out=$(fsop readdir "$M")
assert_eq "" "$(tr ' ' '\n' <<<"$out" | grep -x -e .snap -e .mirrorfs)" "a listing of the root shows neither .snap nor the state directory"
assert_errno rename "$M/.snap" "$M/snap2" EBUSY
assert_errno rmdir "$M/.snap" EBUSY
assert_errno unlink "$M/.snap" EISDIR
assert_errno mkdir "$M/.snap" EEXIST

section "the read-only suite: a snapshot against a read-only bind mount"
mkdir "$R/fx" "$M/fx"
posixdiff_run "$T/fx-ref.txt" --fixture "$R/fx"
posixdiff_run "$T/fx-mnt.txt" --fixture "$M/fx"
assert_eq "$(cat "$T/fx-ref.txt")" "$(cat "$T/fx-mnt.txt")" "the fixture is built the same on both"
assert_ok mkdir "$M/.snap/posix"
bind_ro "$R/fx" || bail "cannot make a read-only bind mount of $R/fx"
# Before anything reads the live fixture: a read of a live file or
# directory updates its atime, and a snapshot shows the live atime.
posixdiff_run "$T/ro-snap.txt" --readonly --snapshot "$M/.snap/posix/fx"
posixdiff_run "$T/ro-ref-snap.txt" --readonly --snapshot "$R/fx"
compare "snapshot" "$T/ro-ref-snap.txt" "$T/ro-snap.txt"
assert_errno rename "$M/.snap/posix" "$M/.snap/other" EROFS
assert_errno rename "$M/.snap/posix/fx/f" "$M/f-out" EROFS
assert_errno rename "$M/fx/f" "$M/.snap/posix/fx/f-in" EROFS
assert_errno link "$M/.snap/posix/fx/f" "$M/f-link" EROFS
mfs_umount "$M"

section "the read-only suite: a -o ro mount against a read-only bind mount"
mfs_mount "$B" "$M" -o "ro,$OPTS"
posixdiff_run "$T/ro-mnt.txt" --readonly "$M/fx"
posixdiff_run "$T/ro-ref.txt" --readonly "$R/fx"
compare "ro mount" "$T/ro-ref.txt" "$T/ro-mnt.txt"
mfs_umount "$M"
check "mirrorfs check: the journal recorded every change" "$MIRRORFS" check "$B"

done_testing
