#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_snap: snapshots through a real mount (DESIGN §4, docs/SNAPSHOTS.md).
#
#  - .snap: hidden from the root listing, reachable, read-only, its errnos
#    (EEXIST to create it, EBUSY to rename/rmdir it), bad snapshot names;
#  - a snapshot equals a reference copy taken at snapshot time (fsstorm
#    --compare: contents, holes, modes, owners, mtimes, xattrs, links) after
#    every kind of change to the live tree, with several snapshots over
#    overlapping overwrites;
#  - EROFS for every mutation below .snap/NAME, stable distinct st_ino;
#  - du, tar, find, diff -r on a snapshot;
#  - a randomized run (fsstorm in segments, a snapshot and a reference copy
#    after each), compared at the end, after deleting some, after a remount;
#  - concurrent appending writers during mkdir .snap/NAME: each snapshot
#    holds exactly a prefix of each writer's records, including every record
#    whose write() returned before mkdir started and none whose write()
#    started after mkdir returned;
#  - kill -9 of the daemon during a storm with snapshots being taken: after
#    a remount every snapshot taken before the kill equals its reference;
#  - `mirrorfs snap` create/delete/list/expire, mounted and unmounted;
#  - a read-only mount: snapshots readable, mkdir/rmdir in .snap EROFS;
#  - snap_create/snap_delete records in `mirrorfs journal`.
#
# SNAP_SEED (default: the pid) seeds the random parts; printed for replay.
# SNAP_SEGMENTS (default 20) x SNAP_SEGMENT_OPS (default 500) fsstorm ops.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq getfattr setfattr cmp diff tar du find truncate awk perl setsid
need_tools FSOP FSSTORM
mfs_init

SNAP_SEED=${SNAP_SEED:-$$}
SEGMENTS=${SNAP_SEGMENTS:-20}
SEG_OPS=${SNAP_SEGMENT_OPS:-500}
RANDOM=$SNAP_SEED
diag "SNAP_SEED=$SNAP_SEED"


# usec: the wall clock in microseconds (no fork)
usec() {
	local t=$EPOCHREALTIME
	printf '%s\n' "${t//[.,]/}"
}

B=$T/b M=$T/m
mkdir "$B" "$M"
mfs_mount "$B" "$M"

# ---------------------------------------------------------------------------
section ".snap itself"
assert_eq dir "$(st "$M/.snap" type)" ".snap exists and is a directory"
assert_eq 0555 "$(st "$M/.snap" mode)" ".snap is dr-xr-xr-x"
assert_eq "0 0" "$(st "$M/.snap" uid) $(st "$M/.snap" gid)" ".snap belongs to root"
assert_eq $((1 << 62)) "$(st "$M/.snap" ino)" ".snap has st_ino 2^62"
assert_eq 2 "$(st "$M/.snap" nlink)" ".snap without snapshots has nlink 2"
assert_eq "" "$(ls -a "$M" | grep -x '.snap')" "ls -a of the root does not list .snap"
check "cd .snap works" bash -c 'cd "$1/.snap" && ls >/dev/null' _ "$M"
assert_eq "OK" "$(fsop readdir "$M/.snap" | head -c 2)" "readdir of an empty .snap works"
assert_errno mkdir "$M/.snap" EEXIST
assert_errno open "$M/.snap" creat,excl,wronly EEXIST
assert_errno mknod "$M/.snap" fifo EEXIST
assert_errno symlink x "$M/.snap" EEXIST
echo x >"$M/plain"
assert_errno link "$M/plain" "$M/.snap" EEXIST
# the kernel answers first: a file over a directory
assert_errno rename "$M/plain" "$M/.snap" "EISDIR|EBUSY"
assert_errno rename "$M/.snap" "$M/moved" EBUSY
mkdir "$M/adir"
assert_errno rename "$M/adir" "$M/.snap" EBUSY
assert_errno rmdir "$M/.snap" EBUSY
assert_errno unlink "$M/.snap" EISDIR
assert_errno chmod "$M/.snap" 0777 EROFS
assert_errno open "$M/.snap/f" creat,wronly EROFS
assert_errno symlink x "$M/.snap/l" EROFS
assert_errno getxattr "$M/.snap" mirrorfs.dir.rbytes ENODATA
assert_ok mkdir "$M/adir/.snap"   # only the root's .snap is special
assert_ok rmdir "$M/adir/.snap"

# ---------------------------------------------------------------------------
section "a snapshot equals a reference copy after every kind of change"

# mktree DIR: a small tree with every kind of object
mktree() {
	local d=$1
	mkdir -p "$d/sub/deep" "$d/tree/a/b" "$d/special"
	fsop pwrite "$d/big" 0 $((5 * 65536 + 100)) >/dev/null
	fsop pwrite "$d/sparse" $((3 * 65536)) 1000 >/dev/null
	truncate -s 1M "$d/sparse"
	fsop pwrite "$d/holes" 0 $((4 * 65536)) >/dev/null
	fsop pwrite "$d/trunc" 0 $((3 * 65536 + 7)) >/dev/null
	printf 'hello\n' >"$d/small"
	printf 'old\n' >"$d/replaced"
	printf 'open\n' >"$d/openfile"
	: >"$d/empty"
	ln "$d/small" "$d/sub/small.link"
	ln "$d/big" "$d/tree/a/big.link"
	ln "$d/holes" "$d/sub/holes.link"
	ln -s ../small "$d/sub/sym"
	ln -s /nonexistent/target "$d/dangling"
	mkfifo "$d/special/fifo"
	echo x >"$d/tree/a/b/f"
	echo y >"$d/tree/a/g"
	setfattr -n user.a -v 1 "$d/small"
	setfattr -n user.b -v two "$d/sub"
	setfattr -n user.bin -v 0x00ff10 "$d/big"
	chmod 0640 "$d/big"
	chmod 1777 "$d/sub/deep"
	chown 1000:1000 "$d/sub/deep" "$d/holes"
	touch -h -d '2001-01-01 00:00:00.123456789' "$d/dangling"
	touch -d '2001-01-01 00:00:00.123456789' "$d/small" "$d/tree/a/b"
}

# modify DIR ROUND: change everything (ROUND varies the data)
modify() {
	local d=$1 n=$2
	fsop pwrite "$d/big" 70000 "str:OVERWRITE-$n" >/dev/null
	fsop pwrite "$d/big" 0 "str:HEAD-$n" >/dev/null
	fsop pwrite "$d/big" $((2 * 65536 - 3)) "str:straddle-$n" >/dev/null
	fsop fallocate "$d/big" punch $((3 * 65536)) 65536 >/dev/null
	truncate -s $((65536 + 100 * n)) "$d/trunc"
	truncate -s $((9 * 65536 + n)) "$d/trunc"
	fsop pwrite "$d/sparse" $((8 * 65536 + n)) "str:in-a-hole-$n" >/dev/null
	fsop fallocate "$d/holes" punch $((n * 4096)) 8192 >/dev/null
	printf 'more %s\n' "$n" >>"$d/small"
	chmod 0600 "$d/small"
	chown $((1000 + n)):$((2000 + n)) "$d/big"
	touch -d "201$n-02-03 04:05:06.5" "$d/sub"
	setfattr -n user.a -v "changed-$n" "$d/small"
	setfattr -x user.b "$d/sub" 2>/dev/null || setfattr -n user.b -v "back-$n" "$d/sub"
	setfattr -n "user.new$n" -v 1 "$d/big"
	[ -d "$d/sub/deep" ] && mv "$d/sub/deep" "$d/deep-moved"
	[ -f "$d/sub/holes.link" ] && rm "$d/sub/holes.link"
	mv "$d/empty" "$d/empty-$n" 2>/dev/null
	exec 7>>"$d/openfile"
	rm "$d/openfile"
	printf 'written after unlink %s\n' "$n" >&7
	exec 7>&-
	printf 'open %s\n' "$n" >"$d/openfile"
	rm -rf "$d/tree"
	printf 'new %s\n' "$n" >"$d/replacement"
	mv "$d/replacement" "$d/replaced"
	rm "$d/sub/sym"
	ln -s "elsewhere-$n" "$d/sub/sym"
	mkdir -p "$d/tree/a"
	fsop pwrite "$d/tree/a/new-$n" 0 100000 >/dev/null
}

mkdir "$M/t"
mktree "$M/t"
for n in 1 2 3; do
	assert_ok mkdir "$M/.snap/s$n"
	refcopy "$M/t" "$T/ref-s$n"
	cmp_tree "s$n: the reference copy equals the live tree" "$M/t" "$T/ref-s$n"
	modify "$M/t" "$n"
	# a second round of overlapping changes in the same interval
	modify "$M/t" "$((n + 4))"
done
for n in 1 2 3; do
	cmp_tree "s$n equals its reference after all changes" "$M/.snap/s$n/t" "$T/ref-s$n"
done
assert_eq hello "$(head -n 1 "$M/.snap/s1/t/small")" "a snapshot file reads its old content"
assert_eq "$(holemap "$T/ref-s1/sparse")" "$(holemap "$M/.snap/s1/t/sparse")" "SEEK_DATA/SEEK_HOLE of a snapshot file as at the snapshot"
assert_eq 1 "$(getfattr --absolute-names --only-values -n user.a "$M/.snap/s1/t/small")" "getxattr in a snapshot"
assert_errno getxattr "$M/.snap/s1/t/sub" mirrorfs.dir.rbytes ENODATA
assert_errno getxattr "$M/.snap/s1" mirrorfs.dir.rentries ENODATA
assert_eq "../small" "$(readlink "$M/.snap/s1/t/sub/sym")" "readlink in a snapshot"
assert_eq "$(st "$M/.snap/s1/t/small" ino)" "$(st "$M/.snap/s1/t/sub/small.link" ino)" "hard links in one snapshot share st_ino"
assert_eq 2 "$(st "$M/.snap/s1/t/small" nlink)" "nlink as at the snapshot"
s1_small=$(st "$M/.snap/s1/t/small" ino)
assert_ne "$s1_small" "$(st "$M/.snap/s2/t/small" ino)" "the same file in two snapshots has two st_ino"
assert_ne "$(st "$M/small" ino 2>/dev/null)" "$s1_small" "snapshot st_ino differs from the live one"
assert_ge "${s1_small:0:1}" 9 "snapshot st_ino has the top bit set ($s1_small)"
assert_eq "$s1_small" "$(stat -c %i "$M/.snap/s1/t/small")" "snapshot st_ino is stable"
assert_eq 5 "$(st "$M/.snap" nlink)" ".snap nlink = 2 + number of snapshots"
created=$("$MIRRORFS" snap list "$M" --json | jq -r '.[] | select(.name == "s3") | .created_ns')
assert_eq "${created:0:10}" "$(stat -c %Y "$M/.snap/s3")" "a snapshot's mtime is its creation time"
assert_eq "${created:0:10}" "$(stat -c %Z "$M/.snap/s3")" "a snapshot's ctime is its creation time"
assert_eq "${created:0:10}" "$(stat -c %Y "$M/.snap")" ".snap's mtime is the newest snapshot's creation"
check "ls .snap lists the snapshots" bash -c '[ "$(ls "$1/.snap" | tr "\n" " ")" = "s1 s2 s3 " ]' _ "$M"
assert_eq "$(stat -f -c '%b %s %l %c' "$M")" "$(stat -f -c '%b %s %l %c' "$M/.snap/s1/t")" "statfs in a snapshot is the mount's"

# ---------------------------------------------------------------------------
section "every mutation in a snapshot fails with EROFS"
S=$M/.snap/s1/t
assert_errno open "$S/new" creat,wronly EROFS
assert_errno open "$S/big" wronly EROFS
assert_errno open "$S/big" rdwr EROFS
assert_errno open "$S/big" rdonly,trunc EROFS
assert_errno open "$S/big" creat,wronly EROFS
assert_errno write "$S/big" wronly,append x EROFS
assert_errno mknod "$S/fifo2" fifo EROFS
assert_errno mkdir "$S/newdir" EROFS
assert_errno symlink x "$S/sym2" EROFS
assert_errno link "$S/big" "$S/big2" EROFS
assert_errno link "$S/big" "$M/from-snap" EROFS
assert_errno link "$M/plain" "$S/into-snap" EROFS
assert_errno unlink "$S/big" EROFS
assert_errno rmdir "$S/tree/a/b" EROFS
assert_errno rename "$S/big" "$S/big3" EROFS
assert_errno rename "$S/big" "$M/out-of-snap" EROFS
assert_errno rename "$M/plain" "$S/into" EROFS
assert_errno rename "$S/big" "$M/.snap/s2/t/big" EROFS
assert_errno truncate "$S/big" 0 EROFS
assert_errno chmod "$S/big" 0777 EROFS
assert_errno chown "$S/big" 0 0 EROFS
assert_errno utimens "$S/big" now now EROFS
assert_errno setxattr "$S/big" user.x 1 EROFS
assert_errno removexattr "$S/small" user.a EROFS
assert_errno setxattr "$S/sub" mirrorfs.dir.rbytes 1 EROFS
assert_errno copy_range "$M/plain" "$S/big" 0 0 1 EROFS
assert_errno mkdir "$M/.snap/s1/x" EROFS
assert_errno mkdir "$M/.snap/s1/t/x/y" ENOENT
assert_errno rmdir "$M/.snap/s1/t" EROFS
assert_errno fallocate "$S/big" punch 0 4096 EROFS
# a snapshot file is a fine copy_file_range source
assert_ok copy_range "$S/big" "$M/copied" 0 0 65536
check "copy_file_range out of a snapshot copies the old bytes" cmp -n 65536 "$M/copied" "$T/ref-s1/big"
rm -f "$M/copied"

# ---------------------------------------------------------------------------
section "snapshot names"
assert_errno mkdir "$M/.snap/$(printf 'n%.0s' {1..256})" ENAMETOOLONG
assert_ok mkdir "$M/.snap/$(printf 'n%.0s' {1..255})"
assert_ok rmdir "$M/.snap/$(printf 'n%.0s' {1..255})"
assert_errno mkdir "$M/.snap/s1" EEXIST
assert_errno mkdir "$M/.snap/s1/b" EROFS
assert_errno rmdir "$M/.snap/missing" ENOENT
assert_errno mkdir "$M/.snap/." EEXIST
assert_errno rmdir "$M/.snap/.." "ENOTEMPTY|EBUSY|EINVAL"
assert_errno unlink "$M/.snap/s1" EISDIR

# ---------------------------------------------------------------------------
section "tools on a snapshot: du, tar, find, diff -r"
check "du -s works on a snapshot" du -s "$M/.snap/s1/t"
assert_eq "$(du -s --apparent-size "$T/ref-s1" | cut -f1)" "$(du -s --apparent-size "$M/.snap/s1/t" | cut -f1)" "du --apparent-size as the reference"
assert_eq "$(cd "$T/ref-s1" && find . | sort | md5sum)" "$(cd "$M/.snap/s1/t" && find . | sort | md5sum)" "find lists the same paths as in the reference"
check "diff -r of a snapshot and its reference" diff -r --no-dereference -x fifo "$M/.snap/s1/t" "$T/ref-s1"
check "tar c of a snapshot" tar -C "$M/.snap/s1" -cf "$T/s1.tar" --sparse --xattrs t
mkdir "$T/untar"
check "tar x of it" tar -C "$T/untar" -xf "$T/s1.tar" --xattrs --xattrs-include='user.*'
cmp_tree "the tarball of a snapshot equals the reference" "$T/untar/t" "$T/ref-s1" --ignore holes
assert_eq "$(st "$M/.snap/s1/t/small" ino)" "$(find "$M/.snap/s1/t" -samefile "$M/.snap/s1/t/sub/small.link" -name small -printf '%i')" "find -samefile sees the hard link"

# ---------------------------------------------------------------------------
section "randomized: fsstorm in $SEGMENTS segments of $SEG_OPS ops, a snapshot after each"
R=$T/rand
mkdir "$R" "$M/w"
rs=()
for ((k = 1; k <= SEGMENTS; k++)); do
	seed=$((SNAP_SEED * 100 + k))
	if ! out=$("$FSSTORM" --seed "$seed" --ops "$SEG_OPS" "$M/w" "$R" 2>&1); then
		not_ok "fsstorm segment $k (seed $seed) gives the same results on the mount and the reference" "$out"
		break
	fi
	mkdir "$M/.snap/r$k" || { not_ok "mkdir .snap/r$k"; break; }
	refcopy "$R" "$T/ref-r$k"
	rs+=("$k")
done
assert_eq "$SEGMENTS" "${#rs[@]}" "all $SEGMENTS segments ran with identical results"
cmp_tree "the live tree equals the reference" "$M/w" "$R"
for k in "${rs[@]}"; do
	cmp_tree "r$k equals its reference" "$M/.snap/r$k/w" "$T/ref-r$k"
done
kept=()
for k in "${rs[@]}"; do
	if ((k % 3 == 1)); then
		assert_ok rmdir "$M/.snap/r$k"
		rm -rf "$T/ref-r$k"
	else
		kept+=("$k")
	fi
done
assert_errno stat "$M/.snap/r1" ENOENT
for k in "${kept[@]}"; do
	cmp_tree "after deleting every third: r$k equals its reference" "$M/.snap/r$k/w" "$T/ref-r$k"
done
mfs_umount "$M"
check "mirrorfs check finds no drift (.snap is not in the backing tree)" "$MIRRORFS" check "$B"
mfs_mount "$B" "$M"
for k in "${kept[@]}"; do
	cmp_tree "after a remount: r$k equals its reference" "$M/.snap/r$k/w" "$T/ref-r$k"
done
for n in 1 2 3; do
	cmp_tree "after a remount: s$n equals its reference" "$M/.snap/s$n/t" "$T/ref-s$n"
done

# ---------------------------------------------------------------------------
section "concurrent appending writers during mkdir .snap/NAME"
# writer K FILE LOG: append 32-byte records "wK I" with one write(2) each;
# LOG gets "I T_START T_END" (microseconds) per record, after it returned.
writer() {
	local k=$1 i t0 t1
	exec 3>>"$2" 4>>"$3"
	for ((i = 1; ; i++)); do
		t0=$EPOCHREALTIME
		printf '%-31s\n' "w$k $i" >&3 || exit 1
		t1=$EPOCHREALTIME
		printf '%s %s %s\n' "$i" "${t0//[.,]/}" "${t1//[.,]/}" >&4
	done
}
NW=4
mkdir "$M/c"
ws=()
for ((k = 1; k <= NW; k++)); do
	: >"$M/c/w$k"
	bg writer "$k" "$M/c/w$k" "$T/wlog$k"
	ws+=("$BG_PID")
done
sleep 0.3
cs=()
for ((s = 1; s <= 8; s++)); do
	t_before=$(usec)
	mkdir "$M/.snap/c$s" || not_ok "mkdir .snap/c$s during the writers"
	t_after=$(usec)
	cs+=("$s $t_before $t_after")
	sleep "0.$((RANDOM % 3 + 1))"
done
for p in "${ws[@]}"; do
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
for c in "${cs[@]}"; do
	read -r s t_before t_after <<<"$c"
	for ((k = 1; k <= NW; k++)); do
		f=$M/.snap/c$s/c/w$k
		size=$(stat -c %s "$f")
		n=$((size / 32))
		what="c$s, writer $k ($n records)"
		if ((size % 32)); then
			not_ok "$what: whole records only" "size $size is not a multiple of 32"
			continue
		fi
		if ! awk -v k="$k" -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "%-31s\n", "w" k " " i }' | cmp -s - "$f"; then
			not_ok "$what: exactly records 1..$n" "$(head -c 200 "$f" | od -c | head -n 5)"
			continue
		fi
		# the last record returned before mkdir started, the first started after it returned
		read -r last_before first_after < <(awk -v b="$t_before" -v a="$t_after" '
			NF == 3 && $3 < b && $1 > lb { lb = $1 }
			NF == 3 && $2 > a && (fa == 0 || $1 < fa) { fa = $1 }
			END { print lb + 0, (fa ? fa : 999999999) }' "$T/wlog$k")
		if ((n >= last_before && n < first_after)); then
			ok "$what: has every record returned before mkdir ($last_before), none started after ($first_after)"
		else
			not_ok "$what: has every record returned before mkdir, none started after" \
				"records in the snapshot: $n; last returned before mkdir started: $last_before;" \
				"first started after mkdir returned: $first_after"
		fi
	done
done
mfs_umount "$M"

# ---------------------------------------------------------------------------
section "kill -9 during a storm while snapshots are taken"
B2=$T/b2 M2=$T/m2
mkdir "$B2" "$M2"
mfs_mount "$B2" "$M2"
mkdir "$M2/k"
storms=()
# each storm in a session of its own: stopping it (SIGSTOP below) must not
# earn it a SIGHUP if the test's process group becomes orphaned
for k in 1 2 3; do
	bg setsid "$FSSTORM" --storm --seed $((SNAP_SEED + k)) "$M2/k"
	storms+=("$BG_PID")
done
refs=()
for ((n = 1; n <= 6; n++)); do
	sleep "0.$((RANDOM % 5 + 1))"
	# one snapshot while the storm runs (checked for readability later)
	mkdir "$M2/.snap/busy$n" || not_ok "mkdir .snap/busy$n during a storm"
	# one with the storm paused, so the live tree is its independent reference
	kill -STOP "${storms[@]}"
	sleep 0.2
	mkdir "$M2/.snap/k$n" || { not_ok "mkdir .snap/k$n"; kill -CONT "${storms[@]}"; continue; }
	if "$FSSTORM" --compare "$M2/k" "$M2/.snap/k$n/k" >/dev/null 2>&1 && refcopy "$M2/k" "$T/ref-k$n"; then
		refs+=("$n")
	else
		diag "k$n: the storm was not quiescent; no reference"
	fi
	kill -CONT "${storms[@]}"
done
assert_ge "${#refs[@]}" 3 "references for most paused snapshots (${refs[*]})"
ms=$((100 + RANDOM % 700))
sleep "0.$(printf '%03d' "$ms")"
bg mkdir "$M2/.snap/last"   # possibly cut short by the kill
mfs_alive
for p in "${storms[@]}"; do
	kill -0 "$p" 2>/dev/null || not_ok "storm $p still running at the kill" "it exited early"
done
mfs_kill9 "$M2"
for p in "${storms[@]}"; do
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
done
mfs_mount "$B2" "$M2"
ok "remounted after kill -9 at +${ms} ms"
for n in "${refs[@]}"; do
	cmp_tree "after kill -9: k$n equals its reference" "$M2/.snap/k$n/k" "$T/ref-k$n"
done
for ((n = 1; n <= 6; n++)); do
	check "after kill -9: busy$n is readable" bash -c 'find "$1" -type f -exec cat {} + >/dev/null' _ "$M2/.snap/busy$n"
done
check "a snapshot after kill -9 still takes" mkdir "$M2/.snap/after"
mfs_umount "$M2"
check "mirrorfs check after kill -9 and snapshots finds no drift" "$MIRRORFS" check "$B2"

# ---------------------------------------------------------------------------
section "mirrorfs snap"
B3=$T/b3 M3=$T/m3
mkdir "$B3" "$M3"
mfs_mount "$B3" "$M3"
echo data >"$M3/f"
for n in 1 2 3; do check "snap create e$n" "$MIRRORFS" snap create "$M3" "e$n"; done
assert_eq dir "$(st "$M3/.snap/e1" type)" "snap create through the mount makes .snap/NAME"
out=$("$MIRRORFS" snap create "$M3" e1 2>&1)
assert_eq "1 mirrorfs: cannot create snapshot 'e1' of '$M3': File exists" "$? $out" "snap create of an existing name"
out=$("$MIRRORFS" snap delete "$M3" nope 2>&1)
assert_eq "1 mirrorfs: cannot delete snapshot 'nope' of '$M3': no such snapshot" "$? $out" "snap delete of a missing name"
"$MIRRORFS" snap create "$M3" 'a/b' >/dev/null 2>&1
assert_eq 2 "$?" "snap create with a '/' in the name is a usage error"
"$MIRRORFS" snap expire "$M3" >/dev/null 2>&1
assert_eq 2 "$?" "snap expire without --keep/--keep-within is a usage error"
"$MIRRORFS" snap expire "$M3" --keep-within 5x >/dev/null 2>&1
assert_eq 2 "$?" "snap expire --keep-within 5x is a usage error"
"$MIRRORFS" snap expire "$M3" --keep 1 --keep-within 1d >/dev/null 2>&1
assert_eq 2 "$?" "snap expire with both --keep and --keep-within is a usage error"
sleep 2.2
for n in 4 5; do check "snap create e$n" "$MIRRORFS" snap create "$B3" "e$n"; done   # the backing dir stands for its mount
json=$("$MIRRORFS" snap list "$M3" --json)
check "snap list --json is a JSON array" jq -e 'type == "array" and length == 5' <<<"$json"
check "snap list --json has name, created, created_ns, seq, exclusive_bytes, hold" \
	jq -e 'all(.[]; has("name") and (.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]+Z$")) and (.created_ns | type == "number") and (.seq | type == "number") and (.exclusive_bytes | type == "number") and has("hold"))' <<<"$json"
assert_eq "e1 e2 e3 e4 e5" "$(jq -r '[.[].name] | join(" ")' <<<"$json")" "snap list: oldest first"
out=$("$MIRRORFS" snap list "$M3")
assert_match '^NAME +CREATED +SEQ +EXCLUSIVE +HOLD' "$out" "snap list prints a table"
assert_eq 6 "$(wc -l <<<"$out")" "snap list: a header and 5 lines"
out=$("$MIRRORFS" snap expire "$M3" --keep-within 2s --dry-run)
assert_eq "would delete 'e1' would delete 'e2' would delete 'e3'" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')" "expire --keep-within --dry-run prints what it would delete"
assert_eq 5 "$(ls "$M3/.snap" | wc -l)" "--dry-run deletes nothing"
out=$("$MIRRORFS" snap expire "$M3" --keep-within 2s)
assert_eq "deleted 'e1' deleted 'e2' deleted 'e3'" "$(tr '\n' ' ' <<<"$out" | sed 's/ $//')" "expire --keep-within 2s deletes the older ones"
assert_eq "e4 e5" "$(ls "$M3/.snap" | tr '\n' ' ' | sed 's/ $//')" "the younger ones stay"
check "snap create e6" "$MIRRORFS" snap create "$M3" e6
out=$("$MIRRORFS" snap expire "$M3" --keep 2)
assert_eq "deleted 'e4'" "$out" "expire --keep 2 deletes all but the newest 2"
assert_eq "e5 e6" "$(ls "$M3/.snap" | tr '\n' ' ' | sed 's/ $//')" "the newest 2 stay"
check "snap delete" "$MIRRORFS" snap delete "$M3" e5
assert_errno stat "$M3/.snap/e5" ENOENT
# a mirror peer holds the last snapshot it received; paused, it stays there
peer=$("$MIRRORFS" peer add "$M3" "file://$T/r3")
check "peer add file:// (for a hold)" test -n "$peer"
check "sync ships the waiting snapshot, e6" "$MIRRORFS" sync "$M3"
check "pause the peer" "$MIRRORFS" pause "$M3"
assert_eq "e6 peer:$peer" "$("$MIRRORFS" snap list "$M3" --json | jq -r '.[] | select(.hold) | "\(.name) \(.hold)"')" \
	"snap list shows the peer's hold on what it received"
echo more >"$M3/g"
assert_ok mkdir "$M3/.snap/h1"
assert_ok mkdir "$M3/.snap/h2"
out=$("$MIRRORFS" snap expire "$M3" --keep 1 2>&1)
assert_eq "0 kept 'e6': held by peer:$peer deleted 'h1'" "$? $(tr '\n' ' ' <<<"$out" | sed 's/ $//')" \
	"expire --keep 1 passes over the held snapshot"
assert_eq "e6 h2" "$(ls "$M3/.snap" | tr '\n' ' ' | sed 's/ $//')" "expire never deletes a held snapshot"
out=$("$MIRRORFS" snap delete "$M3" e6 2>&1)
assert_eq "1 mirrorfs: cannot delete snapshot 'e6' of '$M3': it is held (see 'mirrorfs snap list')" "$? $out" \
	"snap delete of a held snapshot"
check "peer remove releases its holds" "$MIRRORFS" peer remove "$M3" "$peer"
assert_eq "" "$("$MIRRORFS" snap list "$M3" --json | jq -r '.[] | select(.hold) | .name')" "no hold left"
check "snap delete h2" "$MIRRORFS" snap delete "$M3" h2
rm -f "$M3/g"

# exclusive_bytes is what deleting frees: the copies' blocks, not 64 KiB a chunk
truncate -s 64M "$M3/sparse"
printf x | dd of="$M3/sparse" bs=1 seek=1000000 conv=notrunc status=none
head -c 1048576 /dev/urandom >"$M3/one"
assert_ok mkdir "$M3/.snap/x"
dd if=/dev/zero of="$M3/one" bs=1M count=1 conv=notrunc,fsync status=none
truncate -s 0 "$M3/sparse"
ex=$("$MIRRORFS" snap list "$M3" --json | jq '.[] | select(.name == "x") | .exclusive_bytes')
check "exclusive_bytes counts 1 MiB overwritten and a 64 MiB sparse file's one block ($ex)" \
	test "$ex" -ge $((1048576 + 512)) -a "$ex" -le $((1048576 + 65536))
assert_ok rmdir "$M3/.snap/x"
rm -f "$M3/one" "$M3/sparse"
bad=$'bad\001\377name'
assert_ok mkdir "$M3/.snap/$bad"
json=$("$MIRRORFS" snap list "$M3" --json)
check "snap list --json with a control character and a non-UTF-8 byte is valid JSON" jq -e . <<<"$json"
assert_eq '62616401FF6E616D65' "$(jq -r '.[] | select(.name_hex) | .name_hex' <<<"$json")" "name_hex holds the exact bytes"
assert_eq $'bad\001\uFFFDname' "$(jq -r '.[] | select(.name_hex) | .name' <<<"$json")" "the name has U+FFFD for the bad byte"
assert_match 'bad\\x01\\xffname' "$("$MIRRORFS" snap list "$M3")" "the table escapes the name"
assert_ok rmdir "$M3/.snap/$bad"
since=0
assert_journal "snap_create records" "$M3" "$since" '.op == "snap_create"'
assert_journal "snap_delete records" "$M3" "$since" '.op == "snap_delete"'
mfs_umount "$M3"

# unmounted: the command opens the journal itself
check "unmounted: snap create" "$MIRRORFS" snap create "$B3" u1
check "unmounted: snap create" "$MIRRORFS" snap create "$B3" u2
assert_eq "e6 u1 u2" "$("$MIRRORFS" snap list "$B3" --json | jq -r '[.[].name] | join(" ")')" "unmounted: snap list"
out=$("$MIRRORFS" snap expire "$B3" --keep 2)
assert_eq "deleted 'e6'" "$out" "unmounted: snap expire --keep 2"
check "unmounted: snap delete" "$MIRRORFS" snap delete "$B3" u1
assert_eq "u2" "$("$MIRRORFS" snap list "$B3" --json | jq -r '[.[].name] | join(" ")')" "unmounted: what is left"
out=$("$MIRRORFS" snap list "$T/nonexistent" 2>&1)
assert_eq 1 "$?" "snap list of a missing directory fails"
check "mirrorfs check after snapshots made while unmounted" "$MIRRORFS" check "$B3"

# ---------------------------------------------------------------------------
section "read-only mount"
mfs_mount "$B3" "$M3" -o ro
assert_eq "data" "$(cat "$M3/.snap/u2/f")" "a snapshot reads on a read-only mount"
assert_errno mkdir "$M3/.snap/x" EROFS
assert_errno rmdir "$M3/.snap/u2" EROFS
mfs_umount "$M3"

done_testing
