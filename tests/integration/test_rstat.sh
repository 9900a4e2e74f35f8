#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_rstat: the recursive statistics exposed as virtual xattrs
# mirrorfs.dir.rctime|rbytes|rfiles|rsubdirs|rentries.
#
# rctime must propagate to every ancestor (through every parent of a hard
# link) and leave unrelated directories alone; the counters must be exact
# after creates, renames of subtrees, hard links (every link counts, like
# `du -l`), size changes through either link, unlinks, replacing renames and
# exchanges. Expected counters are recomputed from the backing tree after
# every step (and checked by hand at a few points).

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd getfattr setfattr find awk
need_tools FSOP
mfs_init

B=$T/backing M=$T/mnt
mkdir "$B" "$M"
mfs_mount "$B" "$M"

RSTATS="rbytes rfiles rsubdirs rentries"
# Coarse kernel timestamps may lag the clock `date` reads by a tick or two.
SLACK_NS=50000000

# rx DIR NAME: the value of mirrorfs.dir.NAME (error text if unreadable)
rx() {
	getfattr --absolute-names --only-values -n "mirrorfs.dir.$2" "$1" 2>&1
}

# rct DIR: rctime in nanoseconds, or the raw value if it is malformed
rct() {
	local v
	v=$(rx "$1" rctime)
	if [[ $v =~ ^([0-9]+)\.([0-9]{9})$ ]]; then
		printf '%s\n' $((BASH_REMATCH[1] * 1000000000 + 10#${BASH_REMATCH[2]}))
	else
		printf 'malformed:%s\n' "$v"
	fi
}

now_ns() { date +%s%N; }

# rstats DIR: "rbytes rfiles rsubdirs rentries" as mirrorfs reports them
rstats() {
	local n out=()
	for n in $RSTATS; do
		out+=("$(rx "$1" "$n")")
	done
	printf '%s\n' "${out[*]}"
}

# expected BACKING_DIR: the same computed from the backing tree: sizes of
# regular files (each link counts), non-directories, directories below,
# their sum; the state directory at the root never counts.
expected() {
	find "$1" -mindepth 1 -path "$B/.mirrorfs" -prune -o -printf '%y %s\n' | awk '
		$1 == "d" { d++; next }
		$1 == "f" { bytes += $2 }
		{ f++ }
		END { printf "%d %d %d %d\n", bytes, f, d, f + d }'
}

# check_tree STEP DIR...: every DIR (relative to the root) has exact rstats
check_tree() {
	local step=$1 d
	shift
	for d in "$@"; do
		if [ "$d" = . ]; then
			assert_eq "$(expected "$B")" "$(rstats "$M")" "$step: rbytes rfiles rsubdirs rentries of the root"
		else
			assert_eq "$(expected "$B/$d")" "$(rstats "$M/$d")" "$step: rbytes rfiles rsubdirs rentries of /$d"
		fi
	done
}

# check_rctime_chain DESC T0 DIR...: each DIR's rctime is well-formed, not
# older than T0 (the wall clock before the change) and not newer than now,
# and not older than the rctime of the DIR after it (its child).
check_rctime_chain() {
	local desc=$1 t0=$2 t1 d v prev=""
	shift 2
	t1=$(now_ns)
	for d in "$@"; do
		v=$(rct "$M/$d")
		if [[ $v == malformed:* ]]; then
			not_ok "$desc: rctime of /$d is SECONDS.NANOSECONDS" "got '${v#malformed:}'"
		elif ((v < t0 - SLACK_NS || v > t1 + SLACK_NS)); then
			not_ok "$desc: rctime of /$d is the time of the change" "rctime $v, change between $t0 and $t1"
		elif [ -n "$prev" ] && ((v < prev)); then
			not_ok "$desc: rctime of /$d is not older than its child's" "rctime $v < child's $prev"
		else
			ok "$desc: rctime of /${d%/} covers the change"
		fi
		prev=$v
	done
}

section "rctime: format, propagation to the root, siblings untouched"
fsop mkdir "$M/a" >/dev/null
for d in a/b a/b/c a/b/c/d a/b/c/d/e s s/t; do fsop mkdir "$M/$d" >/dev/null; done
fsop pwrite "$M/s/t/file" 0 100 >/dev/null
fsop pwrite "$M/a/b/c/d/e/old" 0 100 >/dev/null
assert_match '^[0-9]+\.[0-9]{9}$' "$(rx "$M/a" rctime)" "rctime is SECONDS.NANOSECONDS with 9 digits"
assert_match '^[0-9]+\.[0-9]{9}$' "$(rx "$M" rctime)" "the root has an rctime"
sib=$(rx "$M/s" rctime)
sib2=$(rx "$M/s/t" rctime)
chain="a/b/c/d/e/ a/b/c/d/ a/b/c/ a/b/ a/ ./"
# shellcheck disable=SC2086
chain_args() { printf '%s\n' $chain; }

t0=$(now_ns)
fsop pwrite "$M/a/b/c/d/e/file" 0 1000 >/dev/null
fsop fsync "$M/a/b/c/d/e/file" >/dev/null
mapfile -t dirs < <(chain_args)
check_rctime_chain "write in a/b/c/d/e" "$t0" "${dirs[@]}"
assert_eq "$sib $sib2" "$(rx "$M/s" rctime) $(rx "$M/s/t" rctime)" "rctime of an unrelated sibling tree is unchanged"

for op in "chmod a/b/c/d/e/old 0600" "setxattr a/b/c/d/e/old user.k v" "truncate a/b/c/d/e/old 5" \
	"mkdir a/b/c/d/e/newdir" "symlink x a/b/c/d/e/sl" "unlink a/b/c/d/e/sl" "rename a/b/c/d/e/old a/b/c/d/e/old2" \
	"utimens a/b/c/d/e/old2 1000.5 1000.5"; do
	read -r -a w <<<"$op"
	case ${w[0]} in
	symlink) args=("${w[1]}" "$M/${w[2]}") ;;
	rename) args=("$M/${w[1]}" "$M/${w[2]}") ;;
	*) args=("$M/${w[1]}" "${w[@]:2}") ;;
	esac
	sleep 0.02 # let the coarse clock move past the previous change
	t0=$(now_ns)
	assert_ok "${w[0]}" "${args[@]}"
	check_rctime_chain "${w[0]} in a/b/c/d/e" "$t0" "${dirs[@]}"
done
assert_eq "$sib $sib2" "$(rx "$M/s" rctime) $(rx "$M/s/t" rctime)" "the sibling's rctime is still unchanged"

section "rctime through hard links: every parent"
fsop mkdir "$M/hx" >/dev/null
fsop mkdir "$M/hy" >/dev/null
fsop pwrite "$M/hx/file" 0 10 >/dev/null
fsop link "$M/hx/file" "$M/hy/link" >/dev/null
sleep 0.05
t0=$(now_ns)
assert_ok chmod "$M/hy/link" 0600
check_rctime_chain "chmod through the link in hy" "$t0" hx/ ./
sleep 0.05
t0=$(now_ns)
fsop pwrite "$M/hx/file" 100 10 >/dev/null
fsop fsync "$M/hx/file" >/dev/null
check_rctime_chain "write through the name in hx" "$t0" hy/ ./

section "rbytes, rfiles, rsubdirs, rentries: exact"
for d in t t/x t/y t/x/sub t/x/dd; do fsop mkdir "$M/$d" >/dev/null; done
fsop pwrite "$M/t/x/f1" 0 1000 >/dev/null
fsop pwrite "$M/t/x/f2" 0 2345 >/dev/null
fsop pwrite "$M/t/y/g" 0 10 >/dev/null
fsop pwrite "$M/t/x/sub/h" 0 7 >/dev/null
fsop pwrite "$M/t/x/dd/k" 0 100 >/dev/null
fsop symlink f1 "$M/t/y/l" >/dev/null
fsop mknod "$M/t/y/p" fifo >/dev/null
fsop mkdir "$M/t/empty" >/dev/null
# by hand: x = f1 f2 sub/h dd/k, y = g l p
assert_eq "3452 4 2 6" "$(rstats "$M/t/x")" "by hand: rstats of /t/x"
assert_eq "10 3 0 3" "$(rstats "$M/t/y")" "by hand: rstats of /t/y (a symlink and a fifo are files of 0 bytes)"
assert_eq "3462 7 5 12" "$(rstats "$M/t")" "by hand: rstats of /t"
assert_eq "0 0 0 0" "$(rstats "$M/t/empty")" "by hand: rstats of an empty directory"
check_tree "initial" t t/x t/y t/x/sub t/x/dd t/empty .

assert_ok rename "$M/t/x/sub" "$M/t/y/sub"
check_tree "subtree renamed from x to y" t t/x t/y t/y/sub .
assert_ok link "$M/t/x/f1" "$M/t/y/f1link"
assert_eq "1017 5 1 6" "$(rstats "$M/t/y")" "by hand: a hard link into y counts its bytes again"
check_tree "hard link in a second directory" t t/x t/y .
assert_ok truncate "$M/t/x/f1" 5000
check_tree "truncate through the link in x" t t/x t/y .
assert_ok pwrite "$M/t/y/f1link" 5000 1000
fsop fsync "$M/t/y/f1link" >/dev/null
assert_eq "6000" "$(st "$M/t/x/f1" size)" "size grew through the other link"
check_tree "write through the link in y" t t/x t/y .
assert_ok unlink "$M/t/x/f2"
check_tree "unlink" t t/x t/y .
assert_ok rename "$M/t/x/f1" "$M/t/y/g"
check_tree "rename replacing a file in another directory (both names now in y)" t t/x t/y .
assert_ok rename "$M/t/x/dd" "$M/t/y/l" exchange
check_tree "exchange of a directory and a symlink across directories" t t/x t/y t/y/l .
assert_ok rename "$M/t/y/sub" "$M/outside"
check_tree "subtree moved out of /t" t t/y outside .
assert_ok unlink "$M/t/y/f1link"
assert_ok rmdir "$M/t/empty"
check_tree "unlink of the second link, rmdir" t t/x t/y .
assert_ok open "$M/t/x/new" creat,wronly,trunc
assert_ok ftruncate "$M/t/x/new" 123456
assert_ok fallocate "$M/t/x/new" keep 0 1M
check_tree "ftruncate and fallocate keep-size (rbytes is st_size)" t t/x .

section "virtual xattrs are never listed and cannot be set"
for d in "$M" "$M/t" "$M/a"; do
	out=$(getfattr --absolute-names -d -m - "$d" 2>&1)
	if grep -q mirrorfs <<<"$out"; then
		not_ok "getfattr -d -m - $d lists no mirrorfs.* attribute" "$out"
	else
		ok "getfattr -d -m - $d lists no mirrorfs.* attribute"
	fi
	out=$(fsop listxattr "$d")
	case $out in
	OK*mirrorfs*) not_ok "listxattr $d lists no mirrorfs.* attribute" "$out" ;;
	OK*) ok "listxattr $d lists no mirrorfs.* attribute" ;;
	*) not_ok "listxattr $d works" "$out" ;;
	esac
done
before=$(rstats "$M/t")
for n in rctime $RSTATS; do
	check_fails "setfattr mirrorfs.dir.$n fails" setfattr -n "mirrorfs.dir.$n" -v 5 "$M/t"
	assert_errno setxattr "$M/t" "mirrorfs.dir.$n" 5 "EPERM|EOPNOTSUPP|EACCES"
	assert_errno removexattr "$M/t" "mirrorfs.dir.$n" "EPERM|EOPNOTSUPP|EACCES|ENODATA"
done
assert_eq "$before" "$(rstats "$M/t")" "the counters are unchanged after the attempts"
assert_errno getxattr "$M/t" mirrorfs.dir.nonsense ENODATA
assert_errno lstat "$B/t/mirrorfs.dir.rbytes" ENOENT

section "persistence"
before_t=$(rstats "$M/t") before_r=$(rstats "$M") before_c=$(rx "$M/a" rctime)
mfs_umount "$M"
check "mirrorfs check: rstats and tree agree" "$MIRRORFS" check "$B"
mfs_mount "$B" "$M"
assert_eq "$before_t | $before_r | $before_c" "$(rstats "$M/t") | $(rstats "$M") | $(rx "$M/a" rctime)" "rstats and rctime survive a remount"
check_tree "after remount" t t/x t/y .
mfs_umount "$M"

done_testing
