#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_perms: permissions and ownership as seen by an unprivileged user.
#
# The daemon runs as root, so every permission decision must be the kernel's
# (default_permissions) or mirrorfs's own, and objects must be created with
# the caller's uid/gid (setgid directories pass their group on) and mode
# (the caller's umask, never the daemon's). One scenario runs as `nobody`
# (setpriv) on the mount and on a plain directory of the same filesystem; the
# results must be the same, and the key ones are also checked absolutely.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd setpriv chgrp
need_tools FSOP
mfs_init

NOBODY=65534
NOGROUP=65534
GRP=4242      # a group nobody belongs to only when we say so
B=$T/backing M=$T/mnt R=$T/ref
mkdir "$B" "$M" "$R"
# a copy of fsop that `nobody` can run wherever the build dir is
cp "$FSOP" "$T/fsop"
chmod 0755 "$T/fsop"

as_nobody() { setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups "$T/fsop" "$@"; }
as_member() { setpriv --reuid=$NOBODY --regid=$NOGROUP --groups=$GRP "$T/fsop" "$@"; }
as_umask() { local u=$1; shift; setpriv --reuid=$NOBODY --regid=$NOGROUP --clear-groups "$T/fsop" -u "$u" "$@"; }

# attrs PATH: "uid gid mode type" as root sees it
attrs() {
	local out
	out=$("$FSOP" lstat "$1")
	case $out in
	OK*) printf '%s %s %s %s\n' "$(kv uid "$out")" "$(kv gid "$out")" "$(kv mode "$out")" "$(kv type "$out")" ;;
	*) printf '%s\n' "$out" ;;
	esac
}

# scenario DIR: set up as root, act as nobody, print "label: result" lines
scenario() {
	local X=$1
	(
		set -e
		mkdir -m 1777 "$X/pub"
		mkdir -m 0755 "$X/priv"
		echo data >"$X/priv/rootfile"
		chmod 0644 "$X/priv/rootfile"
		echo secret >"$X/priv/secret"
		chmod 0600 "$X/priv/secret"
		echo shared >"$X/pub/rootowned"
		chmod 0666 "$X/pub/rootowned"
		mkdir -m 0700 "$X/closed"
		: >"$X/closed/x"
		mkdir "$X/sg"
		chgrp $GRP "$X/sg"
		chmod 2775 "$X/sg"
		mkdir "$X/sgx"
		chgrp $GRP "$X/sgx"
		chmod 2777 "$X/sgx"
	) || { echo "setup: failed"; return; }
	echo "create in a 1777 dir: $(as_nobody open "$X/pub/mine" creat,wronly 0644) | $(attrs "$X/pub/mine")"
	echo "write a root 0644 file: $(as_nobody open "$X/priv/rootfile" wronly)"
	echo "O_TRUNC a root 0644 file: $(as_nobody open "$X/priv/rootfile" rdonly,trunc)"
	echo "truncate a root 0644 file: $(as_nobody truncate "$X/priv/rootfile" 0)"
	echo "read a root 0644 file: $(as_nobody pread "$X/priv/rootfile" 0 4)"
	echo "read a root 0600 file: $(as_nobody open "$X/priv/secret" rdonly)"
	echo "access(W) of a root 0644 file: $(as_nobody access "$X/priv/rootfile" w)"
	echo "create in a root 0755 dir: $(as_nobody open "$X/priv/new" creat,wronly 0644)"
	echo "mkdir in a root 0755 dir: $(as_nobody mkdir "$X/priv/newdir")"
	echo "symlink in a root 0755 dir: $(as_nobody symlink x "$X/priv/sl")"
	echo "unlink in a root 0755 dir: $(as_nobody unlink "$X/priv/rootfile")"
	echo "rename out of a root 0755 dir: $(as_nobody rename "$X/priv/rootfile" "$X/pub/stolen")"
	echo "readdir of a root 0700 dir: $(as_nobody readdir "$X/closed")"
	echo "lookup in a root 0700 dir: $(as_nobody lstat "$X/closed/x")"
	echo "chmod someone else's file: $(as_nobody chmod "$X/priv/rootfile" 0777)"
	echo "chown own file to root: $(as_nobody chown "$X/pub/mine" 0 -1)"
	echo "chgrp own file to a group not a member of: $(as_nobody chown "$X/pub/mine" -1 $GRP)"
	echo "chmod own file: $(as_nobody chmod "$X/pub/mine" 0600) | $(attrs "$X/pub/mine")"
	echo "explicit utimes on someone else's writable file: $(as_nobody utimens "$X/pub/rootowned" 1.5 1.5)"
	echo "UTIME_NOW on someone else's writable file: $(as_nobody utimens "$X/pub/rootowned" now now)"
	echo "setxattr user.* on someone else's read-only file: $(as_nobody setxattr "$X/priv/rootfile" user.x 1)"
	echo "setxattr user.* on own file: $(as_nobody setxattr "$X/pub/mine" user.x 1)"
	echo "sticky dir: unlink root's file: $(as_nobody unlink "$X/pub/rootowned")"
	echo "sticky dir: rename root's file: $(as_nobody rename "$X/pub/rootowned" "$X/pub/x")"
	echo "sticky dir: unlink own file: $(as_nobody open "$X/pub/tmp" creat,wronly) $(as_nobody unlink "$X/pub/tmp")"
	echo "hard link to a file I cannot read (protected_hardlinks): $(as_nobody link "$X/priv/secret" "$X/pub/hl")"
	echo "setgid dir, member: create: $(as_member open "$X/sg/f" creat,wronly 0664) | $(attrs "$X/sg/f")"
	echo "setgid dir, member: mkdir: $(as_member mkdir "$X/sg/sub" 0775) | $(attrs "$X/sg/sub")"
	echo "setgid dir, member: mkdir in the new subdir: $(as_member mkdir "$X/sg/sub/subsub" 0755) | $(attrs "$X/sg/sub/subsub")"
	echo "setgid dir, non-member: create: $(as_nobody open "$X/sgx/f" creat,wronly 0666) | $(attrs "$X/sgx/f")"
	echo "setgid dir, non-member: create asking for S_ISGID: $(as_nobody open "$X/sgx/g" creat,wronly 2777) | $(attrs "$X/sgx/g")"
	echo "setgid dir, non-member: mknod fifo: $(as_nobody mknod "$X/sgx/p" fifo 0666) | $(attrs "$X/sgx/p")"
	echo "umask 027, create 0666: $(as_umask 027 open "$X/pub/u027" creat,wronly 0666) | $(attrs "$X/pub/u027")"
	echo "umask 002, create 0666: $(as_umask 002 open "$X/pub/u002" creat,wronly 0666) | $(attrs "$X/pub/u002")"
	echo "umask 000, mkdir 0777: $(as_umask 000 mkdir "$X/pub/d000" 0777) | $(attrs "$X/pub/d000")"
	echo "umask 077, mknod fifo 0666: $(as_umask 077 mknod "$X/pub/f077" fifo 0666) | $(attrs "$X/pub/f077")"
	echo "umask 000, symlink: $(as_umask 000 symlink target "$X/pub/sym") | $(attrs "$X/pub/sym")"
	echo "write to own file: $(as_nobody pwrite "$X/pub/mine" 0 str:mine)"
	echo "root chmod u+s of nobody's file, nobody writes it (clears S_ISUID): $(chmod 4755 "$X/pub/mine"; as_nobody pwrite "$X/pub/mine" 0 str:again) | $(attrs "$X/pub/mine")"
}

# compare_scenarios LABEL TRANSCRIPT_MNT TRANSCRIPT_REF
compare_scenarios() {
	local what=$1 i
	local -a mt rt
	mapfile -t mt <"$2"
	mapfile -t rt <"$3"
	for ((i = 0; i < ${#rt[@]} || i < ${#mt[@]}; i++)); do
		if [ "${mt[i]:-}" == "${rt[i]:-}" ]; then
			ok "$what: ${rt[i]}"
		else
			not_ok "$what: same as on a plain directory: ${rt[i]%%: *}" "plain dir: ${rt[i]:-(nothing)}" "mirrorfs:  ${mt[i]:-(nothing)}"
		fi
	done
}

# expect TRANSCRIPT "label: result": an absolute expectation on the mount
expect() {
	if grep -qxF -- "$2" "$1"; then
		ok "mirrorfs: $2"
	else
		not_ok "mirrorfs: $2" "got: $(grep -F -- "${2%%: *}:" "$1" | head -n 1)"
	fi
}

section "reference: the scenario on a plain directory"
scenario "$R" >"$T/ref.txt"
diag "$(cat "$T/ref.txt")"

section "allow_other,default_permissions"
mfs_mount "$B" "$M" -o allow_other,default_permissions
mkdir "$M/dp"
scenario "$M/dp" >"$T/dp.txt"
compare_scenarios "default_permissions" "$T/dp.txt" "$T/ref.txt"
f=$T/dp.txt
expect "$f" "create in a 1777 dir: OK size=0 | $NOBODY $NOGROUP 0644 reg"
expect "$f" "write a root 0644 file: EACCES"
expect "$f" "create in a root 0755 dir: EACCES"
expect "$f" "chmod someone else's file: EPERM"
expect "$f" "chown own file to root: EPERM"
expect "$f" "sticky dir: unlink root's file: EPERM"
expect "$f" "setgid dir, member: create: OK size=0 | $NOBODY $GRP 0644 reg"
expect "$f" "setgid dir, member: mkdir: OK | $NOBODY $GRP 2755 dir"
expect "$f" "setgid dir, non-member: create: OK size=0 | $NOBODY $GRP 0644 reg"
expect "$f" "umask 027, create 0666: OK size=0 | $NOBODY $NOGROUP 0640 reg"
expect "$f" "umask 002, create 0666: OK size=0 | $NOBODY $NOGROUP 0664 reg"
expect "$f" "umask 000, mkdir 0777: OK | $NOBODY $NOGROUP 0777 dir"
assert_eq "$NOBODY $NOGROUP" "$(st "$B/dp/pub/mine" uid) $(st "$B/dp/pub/mine" gid)" "the backing file is owned by the creator too"
mfs_umount "$M"

section "allow_other without default_permissions: the same decisions"
# The daemon runs as root: without default_permissions the kernel asks it,
# and it must not let every user do what root can.
mfs_mount "$B" "$M" -o allow_other
mkdir "$M/nodp"
scenario "$M/nodp" >"$T/nodp.txt"
compare_scenarios "no default_permissions" "$T/nodp.txt" "$T/ref.txt"
mfs_umount "$M"

section "without allow_other, other users cannot enter the mount"
mfs_mount "$B" "$M"
assert_eq EACCES "$(as_nobody lstat "$M/dp")" "nobody gets EACCES without allow_other"
assert_match "^OK " "$(as_nobody open "$B/dp/pub/mine" rdonly)" "(while the backing file itself is readable by nobody)"
mfs_umount "$M"
check "mirrorfs check: no drift" "$MIRRORFS" check "$B"

done_testing
