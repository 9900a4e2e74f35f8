#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_dr: the read-only DR mount of a replica (fs/dr.c).
#
#  1. a source mount mirrors to a file:// replica; `mount --read-only` of the
#     replica shows the newest snapshot at its root, equal to the source's
#     .snap/s1 (fsstorm --compare: contents, holes, modes, owners, mtimes,
#     xattrs, hard links), .snap lists s1, every mutation fails with EROFS;
#  2. a read-write mount of the replica is refused with one clear line and
#     nothing is mounted;
#  3. while the DR mount is up, the source changes a lot and ships s2: the
#     DR root shows s2 within ~2 s without a remount, and moves as one: once
#     its marker shows s2, a deep path from the root (a root wider than a
#     daemon would remember names of) never resolves in s1 (a probe walks
#     it all along); .snap lists s1 and s2, .snap/s1 still equals a
#     reference copy of s1, a file opened in s1 keeps reading s1;
#  4. during big incremental syncs, traversals of the DR mount (each pinned
#     to one snapshot by starting below the root: cd DR/data) only ever see
#     exactly the old or the new snapshot: a manifest (types, names, modes,
#     and the MD5 of every file read with O_DIRECT, so every read reaches
#     the daemon and its snapshot read path) equal to one of the two
#     references; a half-applied state would match neither;
#  5. a snapshot deleted on the replica disappears from the DR mount (its
#     ids fail with ENOENT); when it is the newest, the root moves to the
#     newest remaining one, as one: with the kernel holding fresh entries of
#     the deleted one, no walk from the root fails once the root shows the
#     other (the probe again, a deep path, the whole tree); then `mirrorfs
#     umount` of each mount returns only once its daemon has exited (also
#     a daemon slow to exit), with status 0.
#
# DR_BIG_MB (default 200): data rewritten per incremental sync in part 4.
# DR_ROUNDS (default 2): incremental syncs in part 4.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq getfattr setfattr cmp diff find sort md5sum dd perl truncate stat
need_tools FSOP FSSTORM
mfs_init

BIG_MB=${DR_BIG_MB:-200}
ROUNDS=${DR_ROUNDS:-2}
NBIG=40                           # big files; BIG_MB spread over them
BIG_KB=$((BIG_MB * 1024 / NBIG))

S=$T/src SM=$T/srcmnt R=$T/replica DR=$T/dr
mkdir "$S" "$SM" "$DR"


# sync_peer: ship the newest snapshot of the source and wait for it
sync_peer() {
	local out
	if out=$(timeout 300 "$MIRRORFS" sync "$SM" 2>&1); then
		ok "sync $1"
	else
		not_ok "sync $1" "$out"
		return 1
	fi
}

# wait_marker WANT SECONDS: poll until DR/marker reads WANT; prints the
# milliseconds it took; 1 if it never did
wait_marker() {
	local want=$1 t0 i n=$(($2 * 20)) got
	t0=$(date +%s%N)
	for ((i = 0; i <= n; i++)); do
		got=$(cat "$DR/marker" 2>/dev/null)
		if [ "$got" = "$want" ]; then
			printf '%s\n' $((($(date +%s%N) - t0) / 1000000))
			return 0
		fi
		sleep 0.05
	done
	printf 'still %s\n' "$got"
	return 1
}

# snaplist DIR: the names in DIR/.snap, sorted, on one line
snaplist() {
	ls -A "$1/.snap" | LC_ALL=C sort | tr '\n' ' '
}

# set_marker NAME: the name of the next snapshot, in SM/marker and at the
# end of a deep path from the (wide) root, SM/zz-probe/sub/f
set_marker() {
	printf '%s\n' "$1" >"$SM/marker" && printf '%s\n' "$1" >"$SM/zz-probe/sub/f"
}

# probe WANT: walk from the DR root again and again until $T/probe-stop
# exists: read DR/marker, then DR/zz-probe/sub/f. The root moves as one:
# once the marker reads WANT, the deep path must resolve in that snapshot
# too (not in the one before, whether or not it still exists); what it
# got instead goes to $T/probe-bad.
probe() {
	local m f
	while [ ! -e "$T/probe-stop" ]; do
		m=$(cat "$DR/marker" 2>/dev/null)
		f=$(cat "$DR/zz-probe/sub/f" 2>&1)
		if [ "$m" = "$1" ] && [ "$f" != "$1" ]; then
			printf 'marker %s, zz-probe/sub/f: %s\n' "$m" "$f" >>"$T/probe-bad"
		fi
		sleep 0.02
	done
}

# probe_start WANT, probe_stop: a probe in the background, and its verdict
probe_start() {
	rm -f "$T/probe-stop" "$T/probe-bad"
	probe "$1" &
	PROBE_PID=$!
	PROBE_WANT=$1
	T_BG+=("$PROBE_PID")
}

probe_stop() {
	sleep 1.2   # past the entry timeout of anything cached before the move
	touch "$T/probe-stop"
	wait "$PROBE_PID"
	if [ -s "$T/probe-bad" ]; then
		not_ok "walks from the root saw only $PROBE_WANT once the root showed it" \
			"$(sort "$T/probe-bad" | uniq -c | head -n 5)"
	else
		ok "walks from the root saw only $PROBE_WANT once the root showed it"
	fi
}

# manifest DIR: what one traversal of DIR sees, from one `cd DIR` (so the
# kernel resolves DIR once and the whole walk stays in its snapshot): type,
# path and mode of everything, then the MD5 of every regular file read with
# O_DIRECT (not from the page cache: every read reaches the daemon).
manifest() {
	(
		cd "$1" || exit 1
		find . -printf '%y %m %p\n' | LC_ALL=C sort || exit 1
		find . -type f -print0 | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
			sum=$(dd if="$f" iflag=direct bs=1M status=none | md5sum) || exit 1
			printf '%s %s\n' "${sum%% *}" "$f"
		done
	)
}

# fill_big GEN: (re)write every big file in place (no truncation: the
# receiver overwrites the replica's blocks, which its snapshot still sees)
fill_big() {
	local i
	for ((i = 0; i < NBIG; i++)); do
		{
			printf 'gen=%s big%02d\n' "$1" "$i"
			head -c $((BIG_KB * 1024 - 64)) /dev/urandom
		} | dd of="$SM/data/big/f$i" bs=1M conv=notrunc status=none iflag=fullblock || return 1
	done
}

mfs_mount "$S" "$SM"

# ---------------------------------------------------------------------------
section "a source with a tree, mirrored to a file:// replica"
D=$SM/data
mkdir -p "$D/dir/sub" "$D/big" "$D/small" "$D/gone" "$SM/zz-probe/sub"
set_marker s1
printf 'hello\n' >"$D/dir/hello"
printf 'x%.0s' {1..5000} >"$D/dir/sub/x"
# holes: data at 0, a hole, data at 1 MiB, a hole to 3 MiB
printf 'head' >"$D/holes"
printf 'mid' | dd of="$D/holes" bs=1 seek=1048576 conv=notrunc status=none
truncate -s 3M "$D/holes"
ln "$D/dir/hello" "$D/hardlink"
ln -s dir/hello "$D/symlink"
mkfifo "$D/fifo"
chmod 0640 "$D/dir/hello"
chmod 1777 "$D/dir/sub"
chown 1234:5678 "$D/dir/sub/x"
setfattr -n user.color -v blue "$D/dir/hello"
setfattr -n user.empty "$D/dir"
touch -d '2001-02-03 04:05:06.123456789' "$D/dir/sub/x"
for i in $(seq 0 199); do printf 'gen=1 small%03d\n' "$i" >"$D/small/s$i"; done
for i in $(seq 0 9); do printf 'gone%d\n' "$i" >"$D/gone/g$i"; done
# a wide root: more names than a daemon would care to remember, with the
# deep path of the probe at its end
touch "$SM"/r{0000..1099}
fill_big 1 || bail "cannot write the big files"
out=$("$MIRRORFS" peer add "$SM" "file://$R" 2>&1)
assert_match '^[0-9a-f-]{36}$' "$out" "peer add file://$R prints the peer's UUID"
check "mkdir .snap/s1 on the source" mkdir "$SM/.snap/s1"
root_st_s1=$(stat -c '%a %u %g' "$SM")
refcopy "$SM/.snap/s1" "$T/ref-s1" || bail "cannot copy .snap/s1"
sync_peer s1 || bail "the first sync failed"

# ---------------------------------------------------------------------------
section "a read-write mount of the replica is refused"
# (without -f: were it wrongly mounted, the command would return and the
# checks below and the cleanup would see the mount)
out=$("$MIRRORFS" mount "$R" "$DR" 2>&1)
rc=$?
assert_eq 1 "$rc" "mount of the replica without --read-only exits 1"
assert_match "^mirrorfs: cannot mount '$R': it is a replica of [0-9a-f-]{36}; mount it --read-only \(or promote it with takeover\)$" \
	"$out" "... with one line saying why"
if is_mounted "$DR"; then not_ok "nothing is mounted at $DR"; else ok "nothing is mounted at $DR"; fi
out=$("$MIRRORFS" mount -o rw "$R" "$DR" 2>&1)
assert_match "it is a replica of" "$out" "-o rw is refused too"

# ---------------------------------------------------------------------------
section "the read-only DR mount shows s1"
mfs_mount "$R" "$DR" --read-only
assert_eq "s1" "$(cat "$DR/marker")" "the root shows s1"
cmp_tree "the DR root equals the source's .snap/s1" "$DR" "$SM/.snap/s1" --ignore root
cmp_tree "the DR root equals the reference copy of s1" "$DR" "$T/ref-s1" --ignore root
check "diff -r DR .snap/s1" diff -r --exclude=fifo "$DR" "$SM/.snap/s1"
assert_eq "$root_st_s1" "$(stat -c '%a %u %g' "$DR")" "the DR root has the mode and owner of the source's root"
assert_eq "1" "$(stat -c '%i' "$DR")" "the DR root's st_ino is 1"
assert_match "(^| )s1 " "$(snaplist "$DR")" "DR/.snap lists s1"
assert_eq "$(snaplist "$SM")" "$(snaplist "$DR")" "DR/.snap lists what the source's .snap does"
cmp_tree "DR/.snap/s1 equals the reference copy" "$DR/.snap/s1" "$T/ref-s1" --ignore root
assert_eq "" "$(ls -A "$DR" | grep -E '^\.(snap|mirrorfs)')" "neither .snap nor .mirrorfs is listed in the DR root"
assert_eq "blue" "$(getfattr --absolute-names --only-values -n user.color "$DR/data/dir/hello" 2>&1)" "xattrs read through the DR root"
assert_eq "$(holemap "$SM/.snap/s1/data/holes")" "$(holemap "$DR/data/holes")" "the same data/hole map as the source's"

# ---------------------------------------------------------------------------
section "every mutation of the DR mount fails with EROFS"
for p in "$DR" "$DR/data/dir" "$DR/.snap/s1/data"; do
	assert_errno open "$p/new" creat,wronly EROFS
	assert_errno mkdir "$p/newdir" EROFS
	assert_errno mknod "$p/fifo2" fifo EROFS
	assert_errno symlink x "$p/sym2" EROFS
done
assert_errno open "$DR/marker" wronly EROFS
assert_errno open "$DR/marker" rdwr EROFS
assert_errno open "$DR/marker" rdonly,trunc EROFS
assert_errno write "$DR/marker" wronly,append x EROFS
assert_errno truncate "$DR/marker" 0 EROFS
assert_errno unlink "$DR/marker" EROFS
assert_errno unlink "$DR/data/dir/hello" EROFS
assert_errno rmdir "$DR/data/gone" EROFS
assert_errno rmdir "$DR/data" EROFS
assert_errno rename "$DR/marker" "$DR/marker2" EROFS
assert_errno rename "$DR/data/dir" "$DR/data/dir2" EROFS
assert_errno link "$DR/marker" "$DR/marker3" EROFS
assert_errno chmod "$DR/marker" 0777 EROFS
assert_errno chmod "$DR" 0777 EROFS
assert_errno chown "$DR/marker" 1 1 EROFS
assert_errno utimens "$DR/marker" now now EROFS
assert_errno setxattr "$DR/data/dir/hello" user.x 1 EROFS
assert_errno removexattr "$DR/data/dir/hello" user.color EROFS
assert_errno setxattr "$DR" user.x 1 EROFS
assert_errno fallocate "$DR/data/holes" punch 0 4096 EROFS
assert_errno mkdir "$DR/.snap/x" EROFS
assert_errno rmdir "$DR/.snap/s1" EROFS
assert_errno rename "$DR/.snap/s1" "$DR/.snap/s9" EROFS
assert_errno rmdir "$DR/.snap" "EROFS|EBUSY"
check_fails "touch in the DR root fails" touch "$DR/t"
check_fails "setfattr fails" setfattr -n user.y -v 1 "$DR/marker"
check_fails "mv fails" mv "$DR/data/dir" "$DR/data/moved"
check_fails "rm fails" rm -f "$DR/data/dir/hello"
assert_eq "s1" "$(cat "$DR/marker")" "nothing changed"

# ---------------------------------------------------------------------------
section "a new snapshot appears at the DR root without a remount"
exec 7<"$DR/data/dir/hello"          # opened in s1: keeps reading s1
(cd "$DR/data" && exec sleep 600) &  # a cwd in s1
pinned=$!
T_BG+=("$pinned")
set_marker s2
fill_big 2 || bail "cannot rewrite the big files"
printf 'changed in s2\n' >"$D/dir/hello"
mv "$D/dir" "$D/dir-renamed"
rm -r "$D/gone"
rm "$D/small/s7" "$D/small/s8"
mkdir "$D/new-in-s2"
printf 'new\n' >"$D/new-in-s2/f"
chmod 0600 "$D/small/s9"
setfattr -n user.color -v red "$D/dir-renamed/hello"
truncate -s 100 "$D/holes"
check "mkdir .snap/s2 on the source" mkdir "$SM/.snap/s2"
probe_start s2
sync_peer s2 || bail "cannot sync s2"
if ms=$(wait_marker s2 5); then
	ok "the DR root shows s2 ${ms} ms after the sync returned"
	[ "$ms" -le 2500 ] && ok "... within ~2 s" || not_ok "... within ~2 s" "took $ms ms"
else
	not_ok "the DR root shows s2 within 5 s of the sync" "$ms"
fi
cmp_tree "the DR root equals the source's .snap/s2" "$DR" "$SM/.snap/s2" --ignore root
assert_eq "$(snaplist "$SM")" "$(snaplist "$DR")" "DR/.snap lists s1, s2 (and every other snapshot of the source)"
cmp_tree "DR/.snap/s1 still equals the reference copy of s1" "$DR/.snap/s1" "$T/ref-s1" --ignore root
assert_eq "hello" "$(cat <&7)" "a file opened in s1 still reads s1"
exec 7<&-
assert_eq "hello" "$(cat "/proc/$pinned/cwd/dir/hello" 2>&1)" "a cwd in s1 still resolves in s1"
assert_errno lstat "$DR/data/dir" ENOENT
assert_eq "changed in s2" "$(cat "$DR/data/dir-renamed/hello")" "renamed and rewritten in s2"
probe_stop
kill "$pinned" 2>/dev/null
wait "$pinned" 2>/dev/null

# ---------------------------------------------------------------------------
section "during incremental syncs the DR mount shows whole snapshots only"

# reader ID: traverse DR/data again and again until $T/stop exists; each
# observation goes to $T/obs/ID-N, tagged "-mid" if a sync was running when
# it started and "-post" if it started after the sync had returned.
reader() {
	local id=$1 n=0 tag
	while [ ! -e "$T/stop" ]; do
		n=$((n + 1))
		tag=""
		[ -e "$T/syncing" ] && tag=-mid
		[ -e "$T/post" ] && tag=-post
		manifest "$DR/data" >"$T/obs/$id-$n$tag" 2>&1
	done
}

NREADERS=2
total_obs=0 total_mid=0 bad=0 newdir=new-in-s2
gen=2
manifest "$SM/.snap/s2/data" >"$T/man-s2" || bail "cannot read .snap/s2"
for ((round = 1; round <= ROUNDS; round++)); do
	old=$gen
	gen=$((gen + 1))
	set_marker "s$gen"
	fill_big "$gen" || bail "cannot rewrite the big files"
	for i in $(seq 0 199); do
		[ -e "$D/small/s$i" ] && printf 'gen=%d small%03d\n' "$gen" "$i" >"$D/small/s$i"
	done
	mv "$D/$newdir" "$D/new-$gen"
	newdir=new-$gen
	printf '%d\n' "$gen" >"$D/$newdir/f"

	rm -rf "$T/obs" "$T/stop" "$T/post"
	mkdir "$T/obs"
	touch "$T/syncing"
	pids=()
	for ((r = 1; r <= NREADERS; r++)); do
		reader "$r" &
		pids+=($!)
		T_BG+=($!)
	done
	# the sync takes snapshot s$gen and ships it while the readers read
	timeout 300 "$MIRRORFS" sync --snap-pattern "s$gen" "$SM" >"$T/sync-$gen.log" 2>&1
	rc=$?
	rm -f "$T/syncing"
	if [ "$rc" = 0 ]; then ok "sync s$gen"; else not_ok "sync s$gen" "$(tail -n 5 "$T/sync-$gen.log")"; fi
	wait_marker "s$gen" 5 >/dev/null
	touch "$T/post"
	# every reader finishes one traversal that started after the sync
	for ((i = 0; i < 1200; i++)); do
		[ "$(ls "$T/obs" | grep -c -- '-post$')" -gt "$NREADERS" ] && break
		sleep 0.1
	done
	touch "$T/stop"
	wait "${pids[@]}"

	manifest "$SM/.snap/s$gen/data" >"$T/man-s$gen" || bail "cannot read .snap/s$gen"
	assert_ne "$(md5sum <"$T/man-s$old")" "$(md5sum <"$T/man-s$gen")" "s$old and s$gen differ"
	n=0 n_old=0 n_new=0 mid=0 post_new=0
	for f in "$T"/obs/*; do
		n=$((n + 1))
		if cmp -s "$f" "$T/man-s$old"; then
			n_old=$((n_old + 1))
			[[ $f == *-mid ]] && mid=$((mid + 1))
			[[ $f == *-post ]] && not_ok "a traversal that started after the sync to s$gen saw s$old" "$f"
		elif cmp -s "$f" "$T/man-s$gen"; then
			n_new=$((n_new + 1))
			[[ $f == *-mid ]] && mid=$((mid + 1))
			[[ $f == *-post ]] && post_new=$((post_new + 1))
		else
			bad=$((bad + 1))
			cp "$f" "$T/bad-$gen-$n"
			not_ok "traversal $(basename "$f") during the sync to s$gen is s$old or s$gen" \
				"differs from s$old:" "$(diff "$T/man-s$old" "$f" | head -n 8)" \
				"differs from s$gen:" "$(diff "$T/man-s$gen" "$f" | head -n 8)"
		fi
	done
	diag "round $round: $n traversals ($mid started while the sync ran): $n_old saw s$old, $n_new saw s$gen"
	assert_ge "$post_new" 1 "traversals after the sync to s$gen see s$gen"
	total_obs=$((total_obs + n))
	total_mid=$((total_mid + mid))
done
rm -rf "$T/obs"
assert_eq 0 "$bad" "no traversal saw anything but a whole snapshot ($total_obs traversals)"
assert_ge "$total_mid" 2 "traversals ran while syncs were applying ($total_mid)"
assert_eq "s$gen" "$(cat "$DR/marker")" "the DR root shows s$gen"
cmp_tree "the DR root equals the source's .snap/s$gen" "$DR" "$SM/.snap/s$gen" --ignore root
cmp_tree "DR/.snap/s1 still equals the reference copy of s1" "$DR/.snap/s1" "$T/ref-s1" --ignore root
assert_eq "$(snaplist "$SM")" "$(snaplist "$DR")" "DR/.snap lists every snapshot of the source"

# ---------------------------------------------------------------------------
section "snapshots deleted on the replica"
# `mirrorfs snap delete REPLICA` would go through the (read-only) DR mount
# of REPLICA; a bind mount of the replica directory is another path to the
# same journal, which the DR mount does not lock.
RB=$T/replica-bind
mkdir "$RB"
mount --bind "$R" "$RB" || bail "cannot bind-mount the replica"
T_BINDS+=("$RB")
(cd "$DR/.snap/s2" && exec sleep 600) &   # a cwd in s2
pinned=$!
T_BG+=("$pinned")
sleep 0.2
check "mirrorfs snap delete REPLICA s2" "$MIRRORFS" snap delete "$RB" s2
want=$(snaplist "$SM" | sed 's/\(^\| \)s2 /\1/')
for ((i = 0; i < 40; i++)); do
	[ "$want" = "$(snaplist "$DR")" ] && break
	sleep 0.1
done
assert_eq "$want" "$(snaplist "$DR")" "DR/.snap no longer lists s2"
# the kernel may hold the name for FS_SNAPDIR_TIMEOUT (1 s) until the watcher drops it
for ((i = 0; i < 30; i++)); do
	[ "$(fsop lstat "$DR/.snap/s2")" = ENOENT ] && break
	sleep 0.1
done
assert_errno lstat "$DR/.snap/s2" ENOENT
# a name never looked up there: the journal no longer knows the snapshot
assert_errno lstat "/proc/$pinned/cwd/marker" ENOENT
kill "$pinned" 2>/dev/null
wait "$pinned" 2>/dev/null

newest=$(ls -t "$DR/.snap" | head -n 1)
prev=$(ls -t "$DR/.snap" | sed -n 2p)
want=$(cat "$DR/.snap/$prev/marker")
# the replica's newest is the base of the next stream: refused unless forced
check_fails "mirrorfs snap delete REPLICA $newest (the newest) is refused" "$MIRRORFS" snap delete "$RB" "$newest"
# walks from the root before, during and after the move, and deep ones
# just before it, so that the kernel holds fresh entries of $newest
probe_start "$want"
find "$DR/data" "$DR/zz-probe" >/dev/null
sleep 0.3
check "mirrorfs snap delete --force REPLICA $newest (the newest)" "$MIRRORFS" snap delete --force "$RB" "$newest"
if ms=$(wait_marker "$want" 5); then
	ok "the DR root moves to $prev, the newest remaining snapshot (${ms} ms)"
else
	not_ok "the DR root moves to $prev, the newest remaining snapshot" "$ms"
fi
# right after the move: every path from the root is in $prev
assert_eq "$want" "$(cat "$DR/zz-probe/sub/f" 2>&1)" "a deep path from the root resolves in $prev right after the move"
cmp_tree "the DR root equals the source's .snap/$prev" "$DR" "$SM/.snap/$prev" --ignore root
probe_stop
unbind "$RB"

# ---------------------------------------------------------------------------
section "unmount"
assert_eq "$(mfs_pid "$DR")" "$(getfattr --absolute-names --only-values -n mirrorfs.mount.pid "$DR" 2>&1)" \
	"the DR root's mirrorfs.mount.pid is its daemon's pid"
# `mirrorfs umount X && use the replica`: it returns once the daemon is
# gone, also when the daemon is slow to go (stopped for a second here)
dpid=$(mfs_pid "$DR")
kill -STOP "$dpid"
(sleep 1; kill -CONT "$dpid") &
T_BG+=("$!")
mfs_cli_umount "$DR"
mfs_cli_umount "$SM"
if [ -n "$(mounts_below "$T")" ]; then
	not_ok "nothing is left mounted" "$(mounts_below "$T")"
else
	ok "nothing is left mounted"
fi

done_testing
