#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_mirror: mirroring through the file:// transport (DESIGN §5,
# docs/STREAM.md), through the real binary and real mounts:
#
#  - peer add/list/remove, and the guards of peer add (duplicate, the tree
#    itself, its backing dir, a dir inside either: refused, nothing created);
#  - a randomized workload (fsstorm segments plus explicit renames of
#    directories with changed files inside, files replaced by rename, hard
#    links added and removed, truncate-then-extend, holes, xattrs, symlinks,
#    fifos, multi-MiB files), a snapshot and a sync after each segment:
#    EVERY snapshot on the replica (mounted read-only) equals the source's;
#  - status (--json and text) after syncs; sync naming its own snapshot
#    mirror-YYYYmmdd-HHMMSS; --snap-interval shipping on a schedule;
#  - incremental cost: one small change after a big tree costs little;
#  - send/receive: offline seeding, incremental, a missing --from, a
#    corrupted stream and a truncated one (refused, snapshots intact);
#  - the guard "replica is mirrored from <uuid>" in a second source's status;
#  - kill -9 of `mirrorfs serve` mid-transfer, repeatedly: retries with
#    backoff, converges, resumes rather than restarts;
#  - pause/resume.
#
# MIRROR_SEED (default: the pid) seeds the random parts; printed for replay.
# MIRROR_SEGMENTS (6) x MIRROR_SEGMENT_OPS (300) fsstorm ops;
# MIRROR_BIG_MB (300) MiB in 64 KiB files for the kill test; MIRROR_KILLS (3).

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mirror_lib.sh"
need_fuse
need_cmd jq getfattr setfattr truncate awk dd od md5sum pgrep split head mkfifo
need_tools FSOP FSSTORM
mfs_init

MIRROR_SEED=${MIRROR_SEED:-$$}
SEGMENTS=${MIRROR_SEGMENTS:-6}
SEG_OPS=${MIRROR_SEGMENT_OPS:-300}
BIG_MB=${MIRROR_BIG_MB:-300}
KILLS=${MIRROR_KILLS:-3}
RANDOM=$MIRROR_SEED
diag "MIRROR_SEED=$MIRROR_SEED"

A=$T/a MA=$T/ma R1=$T/r1
mkdir "$A" "$MA"
mfs_mount "$A" "$MA"

# ---------------------------------------------------------------------------
section "peer add / list / remove and the guards of peer add"
out=$("$MIRRORFS" peer add "$MA" "file://$R1" 2>"$T/err")
rc=$?
assert_eq 0 "$rc" "peer add file://R1 succeeds"
P1=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$P1" "peer add prints the peer's UUID"
check "peer add created the replica directory" test -d "$R1"
out=$("$MIRRORFS" peer list "$MA")
assert_match "$P1 +file://$R1" "$out" "peer list shows the UUID and the URL"
json=$("$MIRRORFS" peer list --json "$MA")
assert_eq "$P1 file://$R1 false" "$(jq -r '.[] | "\(.uuid) \(.url) \(.paused)"' <<<"$json")" "peer list --json: uuid, url, paused"
assert_eq "$P1" "$("$MIRRORFS" peer list --json "$A" | jq -r '.[].uuid')" "peer list through the backing dir"

out=$("$MIRRORFS" peer add "$MA" "file://$R1" 2>&1)
assert_eq "1" "$?" "duplicate peer add exits 1"
assert_match "already a peer" "$out" "duplicate peer add says so"

# refused_add DESC URL PATH_THAT_MUST_NOT_APPEAR
refused_add() {
	local desc=$1 url=$2 path=$3 out rc
	out=$("$MIRRORFS" peer add "$MA" "$url" 2>&1)
	rc=$?
	assert_eq 1 "$rc" "peer add of $desc exits 1"
	assert_match "cannot add peer .*(itself|overlaps)" "$out" "peer add of $desc: clear error ($out)"
	if [ -n "$path" ]; then
		if [ -e "$path" ]; then
			not_ok "refused peer add of $desc creates nothing" "$path exists after the refused add" \
				"(it was created before the overlap check; in the backing dir it is drift behind the mount)"
			rm -rf "$path"
		else
			ok "refused peer add of $desc creates nothing"
		fi
	fi
}
refused_add "the mount itself" "file://$MA" ""
refused_add "its backing dir" "file://$A" ""
refused_add "a new dir inside the mount" "file://$MA/inside/deeper" "$MA/inside"
refused_add "a new dir inside the backing dir" "file://$A/newdir/deeper" "$A/newdir"
mkdir "$MA/existing"
refused_add "an existing dir inside the mount" "file://$MA/existing" ""
refused_add "an existing dir inside the backing dir" "file://$A/existing" ""
refused_add "the backing dir spelled with .." "file://$A/existing/.." ""
rmdir "$MA/existing"
assert_eq 1 "$("$MIRRORFS" peer list --json "$MA" | jq length)" "no refused add left a peer behind"

out=$("$MIRRORFS" peer add "$MA" "file://$T/rtmp" 2>&1)
PT=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$PT" "a second peer add prints its UUID"
check "peer remove of it" "$MIRRORFS" peer remove "$MA" "$PT"
assert_eq "$P1" "$("$MIRRORFS" peer list --json "$MA" | jq -r '[.[].uuid] | join(" ")')" "only the first peer is left"
out=$("$MIRRORFS" peer remove "$MA" "$PT" 2>&1)
assert_eq 1 "$?" "peer remove of a removed UUID exits 1"
assert_match "no such peer" "$out" "peer remove of an unknown UUID says so"
out=$("$MIRRORFS" peer remove "$MA" 12345678-1234-1234-1234-123456789abc 2>&1)
assert_eq 1 "$?" "peer remove of a never-seen UUID exits 1 ($out)"
"$MIRRORFS" peer remove "$MA" not-a-uuid >/dev/null 2>&1
rc=$?
assert_ne 0 "$rc" "peer remove of a malformed UUID fails (status $rc)"

# ---------------------------------------------------------------------------
section "randomized workload: $SEGMENTS segments, a snapshot and a sync after each"

# churn DIR K: the kinds of change the brief names, varying with K
churn() {
	local d=$1 k=$2 p=$(($2 - 1))
	mkdir -p "$d/dir$k/sub" "$d/ldir"
	fsop pwrite "$d/dir$k/sub/f" 0 $((k * 5000 + 100)) >/dev/null
	printf 'k%s\n' "$k" >"$d/dir$k/g"
	# a directory with changed files inside is renamed (and moved deeper)
	if [ -d "$d/dir$p" ]; then
		printf 'changed in %s\n' "$k" >>"$d/dir$p/g"
		fsop pwrite "$d/dir$p/sub/f" 10 "str:CHANGED-$k" >/dev/null
		mv "$d/dir$p" "$d/dir$k/moved$p"
	fi
	# a file replaced by rename (the old one had a hard link: it survives there)
	printf 'replacement %s\n' "$k" >"$d/repl.new"
	setfattr -n user.gen -v "$k" "$d/repl.new"
	[ -f "$d/repl" ] && ln -f "$d/repl" "$d/ldir/old-repl-$k"
	mv "$d/repl.new" "$d/repl"
	# hard links added and removed
	printf 'linked %s\n' "$k" >"$d/lk$k"
	ln "$d/lk$k" "$d/lk$k.a"
	ln "$d/lk$k" "$d/ldir/lk$k.b"
	[ -e "$d/lk$p.a" ] && rm "$d/lk$p.a"
	[ -e "$d/ldir/lk$p.b" ] && printf 'through a link %s\n' "$k" >>"$d/ldir/lk$p.b"
	# truncate, then extend (the extension must read as zeros), then write past it
	fsop pwrite "$d/te" 0 200000 >/dev/null
	truncate -s $((1000 * k)) "$d/te"
	truncate -s $((3 * 1048576 + k)) "$d/te"
	fsop pwrite "$d/te" $((2 * 1048576 + k)) "str:tail-$k" >/dev/null
	# holes: data far apart, then a punched hole inside data
	fsop pwrite "$d/holes" $((k * 1048576)) 70000 >/dev/null
	fsop fallocate "$d/holes" punch $((k * 1048576 + 4096)) 8192 >/dev/null
	# a file of several 1 MiB DATA chunks, overwritten in the middle
	[ -f "$d/big" ] || fsop pwrite "$d/big" 0 $((3 * 1048576 + 12345)) >/dev/null
	fsop pwrite "$d/big" $((1048576 - 5)) "str:across-a-chunk-$k" >/dev/null
	# xattrs set, changed, removed
	setfattr -n "user.k$k" -v "v$k" "$d/holes"
	setfattr -n user.same -v "changed-$k" "$d/holes"
	setfattr -x "user.k$p" "$d/holes" 2>/dev/null
	setfattr -n user.dir -v "$k" "$d/dir$k"
	# symlinks (replaced, dangling, absolute), fifos (created, moved, removed)
	ln -sfn "target-$k" "$d/sym"
	ln -sfn "/abs/$k" "$d/dir$k/abs"
	mkfifo "$d/fifo$k"
	[ -p "$d/fifo$p" ] && mv "$d/fifo$p" "$d/dir$k/"
	# modes, owners, times
	chmod 0640 "$d/dir$k/g"
	chown "$((1000 + k)):$((2000 + k))" "$d/dir$k/g"
	touch -h -d "2001-02-0$((k % 9 + 1)) 03:04:05.123456789" "$d/sym"
	# a swap (RENAME_EXCHANGE)
	[ -e "$d/swap-a" ] || { echo a >"$d/swap-a"; mkdir "$d/swap-b"; }
	fsop rename "$d/swap-a" "$d/swap-b" exchange >/dev/null
}

REF=$T/ref
mkdir "$REF" "$MA/w" "$MA/x"
SNAPS=()
for ((k = 1; k <= SEGMENTS; k++)); do
	seed=$((MIRROR_SEED * 100 + k))
	if ! out=$("$FSSTORM" --seed "$seed" --ops "$SEG_OPS" "$MA/w" "$REF" 2>&1); then
		not_ok "fsstorm segment $k (seed $seed): same results on the mount and the reference" "$(tail -n 5 <<<"$out")"
		break
	fi
	churn "$MA/x" "$k"
	if ((k % 2)); then
		# mkdir .snap/NAME: the daemon ships it by itself
		mkdir "$MA/.snap/s$k" || { not_ok "mkdir .snap/s$k"; break; }
		if ! wait_until 60 peer_at "$MA" "$P1" "s$k"; then
			not_ok "the daemon ships s$k by itself" "status: $(pstat_line "$MA" "$P1")"
			break
		fi
	else
		# sync --snap-pattern NAME: snapshot and ship in one command
		if ! out=$("$MIRRORFS" sync --snap-pattern "s$k" "$MA" 2>&1); then
			not_ok "sync --snap-pattern s$k after segment $k" "$out" "status: $(pstat_line "$MA" "$P1")"
			break
		fi
		if [ "$(newest_snap "$MA")" != "s$k" ] || ! peer_at "$MA" "$P1" "s$k"; then
			not_ok "sync --snap-pattern s$k takes s$k and the peer has it when sync returns" \
				"newest: $(newest_snap "$MA")" "status: $(pstat_line "$MA" "$P1")"
			break
		fi
	fi
	SNAPS+=("s$k")
done
assert_eq "$SEGMENTS" "${#SNAPS[@]}" "all $SEGMENTS segments ran and were shipped (odd: mkdir .snap/sK and the daemon; even: sync --snap-pattern sK)"
cmp_tree "the live tree equals fsstorm's reference" "$MA/w" "$REF"
assert_eq "${SNAPS[*]}" "$(snap_names "$R1")" "the replica has every snapshot, in order"
check "no staging directory is left on the replica" test ! -e "$R1/.mirrorfs.recv"
cmp_tree "the replica's live tree equals the newest snapshot" "$MA/.snap/${SNAPS[-1]}" "$R1" --exclude .mirrorfs --ignore root
cmp_replica_snaps "read-only replica mount" "$MA" "$R1" "${SNAPS[@]}"

# ---------------------------------------------------------------------------
section "a write into a hole's block, then a truncate below the write"
# (found by the randomized part, MIRROR_SEED=4242 segment 9): the write
# allocates the whole block, so [0, size) reads as data (zeros) on the
# source; the journaled extent lies past the new size.
fsop pwrite "$MA/x/hb" $((1024 * 1024)) 1000 >/dev/null
check "sync --snap-pattern hb1" "$MIRRORFS" sync --snap-pattern hb1 "$MA"
fsop pwrite "$MA/x/hb" 3472 85 >/dev/null
truncate -s 2581 "$MA/x/hb"
check "sync --snap-pattern hb2" "$MIRRORFS" sync --snap-pattern hb2 "$MA"
diag "source hb2 map: $(holemap "$MA/.snap/hb2/x/hb"); replica live map: $(holemap "$R1/x/hb")"
cmp_tree "the replica's file equals the source's (contents and data/hole map)" "$MA/.snap/hb2/x" "$R1/x"
SNAPS+=(hb1 hb2)
rm "$MA/x/hb"   # one failure, not one per later snapshot

# ---------------------------------------------------------------------------
section "status after syncs"
json=$("$MIRRORFS" status --json "$MA")
check "status --json is an array with one entry per peer" jq -e 'type == "array" and length == 1' <<<"$json"
e=$(jq -c --arg u "$P1" '.[] | select(.uuid == $u)' <<<"$json")
assert_eq "idle" "$(jq -r .state <<<"$e")" "status: state idle"
assert_eq "${SNAPS[-1]}" "$(jq -r .last_snapshot <<<"$e")" "status: last snapshot is the newest"
assert_eq "0" "$(jq -r .pending <<<"$e")" "status: pending 0"
assert_eq "$((SEGMENTS + 2))" "$(jq -r .snapshots_synced <<<"$e")" "status: snapshots_synced"
check "status: lag is a small number (< 60 s): $(jq -r .lag_seconds <<<"$e")" jq -e '.lag_seconds | type == "number" and . >= 0 and . < 60' <<<"$e"
check "status: bytes counters > 0" jq -e '.last_bytes_sent > 0 and .total_bytes_sent > 0 and .total_bytes_raw > 0 and .total_bytes_sent >= .last_bytes_sent' <<<"$e"
check "status: no error, no failures, no retry" jq -e '.last_error == null and .failures == 0 and .next_retry_time == null' <<<"$e"
check "status: last_sync_time is ISO-8601" jq -e '.last_sync_time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' <<<"$e"
out=$("$MIRRORFS" status "$MA" 2>&1)
assert_eq 0 "$?" "status (text) exits 0"
assert_match "peer $P1" "$out" "status text names the peer"
assert_match "state: +idle" "$out" "status text: state idle"
assert_match "last synced: +${SNAPS[-1]}" "$out" "status text: last synced snapshot"
assert_match "pending: +0" "$out" "status text: pending 0"

# ---------------------------------------------------------------------------
section "sync takes its own snapshot mirror-YYYYmmdd-HHMMSS when none is pending"
echo "for the sync's own snapshot" >"$MA/x/own"
before=$(snap_names "$MA")
out=$("$MIRRORFS" sync "$MA" 2>&1)
assert_eq 0 "$?" "sync with nothing pending exits 0"
new=$(newest_snap "$MA")
assert_match '^mirror-[0-9]{8}-[0-9]{6}$' "$new" "sync took a snapshot named mirror-YYYYmmdd-HHMMSS"
assert_eq "$before $new" "$(snap_names "$MA")" "exactly one new snapshot"
assert_eq "$(date -u +%Y%m%d)" "$(cut -c8-15 <<<"$new")" "its name is today's UTC date"
check "when sync returns, the peer has it" peer_at "$MA" "$P1" "$new"
assert_eq "$new" "$(newest_snap "$R1")" "the replica's newest snapshot is it"
SNAPS+=("$new")

# ---------------------------------------------------------------------------
section "incremental cost: one small change after a big tree"
mkdir "$MA/many"
# 2000 files of 4 KiB of random data (16 MiB of hard-to-compress data)
head -c $((2000 * 4096)) /dev/urandom | (cd "$MA/many" && split -b 4096 -a 4 - f)
assert_eq 2000 "$(find "$MA/many" -type f | wc -l)" "2000 files written"
check "sync of the big tree" "$MIRRORFS" sync --snap-pattern many1 "$MA"
full=$(pstat "$MA" "$P1" .last_bytes_sent)
assert_ge "$full" $((8 * 1048576)) "the big tree's sync sent its data ($full bytes)"
printf 'one more line\n' >>"$MA/many/f0100"
check "sync of one small change" "$MIRRORFS" sync --snap-pattern many2 "$MA"
sent=$(pstat "$MA" "$P1" .last_bytes_sent)
raw=$(pstat "$MA" "$P1" .last_bytes_raw)
assert_eq "many2" "$(pstat "$MA" "$P1" .last_snapshot)" "the small change is synced"
if [[ $sent =~ ^[0-9]+$ ]] && ((sent < 65536)); then
	ok "one small change costs little: last_bytes_sent $sent < 64 KiB (the full tree: $full)"
else
	not_ok "one small change costs little: last_bytes_sent < 64 KiB" "got last_bytes_sent=$sent last_bytes_raw=$raw (full tree: $full)"
fi
assert_ge 4096 "$raw" "last_bytes_raw of one small change <= 4 KiB ($raw)"
check "the changed file reached the replica" cmp "$MA/many/f0100" "$R1/many/f0100"
SNAPS+=(many1 many2)

# ---------------------------------------------------------------------------
section "send / receive: offline seeding, incremental, refusals"
R2=$T/r2
mkdir "$R2"
check "send s1 (full)" bash -c '"$1" send "$2" s1 >"$3"' _ "$MIRRORFS" "$MA" "$T/s1.stream"
check "send --from s1 s2" bash -c '"$1" send --from s1 "$2" s2 >"$3"' _ "$MIRRORFS" "$MA" "$T/s1-s2.stream"
check "send --from s2 s3" bash -c '"$1" send --from s2 "$2" s3 >"$3"' _ "$MIRRORFS" "$MA" "$T/s2-s3.stream"
check "send --from many1 many2" bash -c '"$1" send --from many1 "$2" many2 >"$3"' _ "$MIRRORFS" "$MA" "$T/lacking.stream"
SRC_A=$(hello_uuid "$T/s1.stream")
assert_match "$UUID_RE" "$SRC_A" "the stream's HELLO carries the source uuid ($SRC_A)"
out=$("$MIRRORFS" receive "$R2" <"$T/s1-s2.stream" 2>&1)
assert_eq 1 "$?" "receive of an incremental stream into an empty replica exits 1"
assert_match "lacks snapshot 's1'" "$out" "... saying it lacks s1 ($out)"
check "receive s1 seeds the replica" bash -c '"$1" receive "$2" <"$3"' _ "$MIRRORFS" "$R2" "$T/s1.stream"
assert_eq "s1" "$(snap_names "$R2")" "the seeded replica has s1"
cmp_tree "the seeded replica's live tree equals s1" "$MA/.snap/s1" "$R2" --exclude .mirrorfs --ignore root
check "receive of s1 -> s2" bash -c '"$1" receive "$2" <"$3"' _ "$MIRRORFS" "$R2" "$T/s1-s2.stream"
assert_eq "s1 s2" "$(snap_names "$R2")" "the replica has s1 s2"
cmp_tree "after the incremental stream, the live tree equals s2" "$MA/.snap/s2" "$R2" --exclude .mirrorfs --ignore root

out=$("$MIRRORFS" receive "$R2" </dev/null 2>&1)
assert_eq 1 "$?" "receive of empty input exits 1"
assert_match "cannot receive into '[^']*': [^ ]" "$out" "... with a message saying why ($out)"
sum=$(tree_sum "$R2")
out=$("$MIRRORFS" receive "$R2" <"$T/lacking.stream" 2>&1)
assert_eq 1 "$?" "receive of many1 -> many2 into a replica without many1 exits 1"
assert_match "lacks snapshot 'many1'" "$out" "... saying it lacks many1 ($out)"
assert_eq "s1 s2" "$(snap_names "$R2")" "... and adds no snapshot"
assert_eq "$sum" "$(tree_sum "$R2")" "... and leaves the live tree alone"

size=$(stat -c %s "$T/s2-s3.stream")
assert_ge "$size" 4096 "the s2 -> s3 stream is big enough to damage ($size bytes)"
cp "$T/s2-s3.stream" "$T/bad.stream"
flip_byte "$T/bad.stream" $((size / 2))
out=$("$MIRRORFS" receive "$R2" <"$T/bad.stream" 2>&1)
assert_eq 1 "$?" "receive of a stream with a flipped byte at $((size / 2)) exits 1"
assert_match "checksum|truncated|out of sequence|bad|corrupt" "$out" "... with a clear message ($out)"
assert_eq "s1 s2" "$(snap_names "$R2")" "... and adds no snapshot"
head -c $((size / 2)) "$T/s2-s3.stream" >"$T/short.stream"
out=$("$MIRRORFS" receive "$R2" <"$T/short.stream" 2>&1)
assert_eq 1 "$?" "receive of the stream cut at $((size / 2)) bytes exits 1"
assert_match "truncated|end of" "$out" "... with a clear message ($out)"
assert_eq "s1 s2" "$(snap_names "$R2")" "... and adds no snapshot"
cmp_replica_snaps "after a corrupted and a truncated stream" "$MA" "$R2" s1 s2
check "then the intact stream applies" bash -c '"$1" receive "$2" <"$3"' _ "$MIRRORFS" "$R2" "$T/s2-s3.stream"
assert_eq "s1 s2 s3" "$(snap_names "$R2")" "the replica has s1 s2 s3"
cmp_tree "after the damaged streams and the good one, the live tree equals s3" "$MA/.snap/s3" "$R2" --exclude .mirrorfs --ignore root
cmp_replica_snaps "offline replica" "$MA" "$R2" s1 s2 s3

# ---------------------------------------------------------------------------
section "guard: a replica mirrored from source A refuses source B"
B=$T/b MB=$T/mb RG=$T/rg
mkdir "$B" "$MB"
mfs_mount "$B" "$MB"
echo "from B" >"$MB/fromb"
out=$("$MIRRORFS" peer add "$MB" "file://$R1" 2>&1)
assert_eq 1 "$?" "B: peer add of A's replica exits 1"
assert_match "replica is mirrored from $SRC_A" "$out" "B: peer add of A's replica names A ($out)"
# a replica both add while it is unowned; A claims it first
out=$("$MIRRORFS" peer add "$MB" "file://$RG" 2>&1)
PB=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$PB" "B: peer add of an unowned replica"
"$MIRRORFS" pause "$MB" "$PB" >/dev/null
out=$("$MIRRORFS" peer add "$MA" "file://$RG" 2>&1)
PG=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$PG" "A: peer add of the same replica"
mkdir "$MA/.snap/claim"
check "A: sync claims it" "$MIRRORFS" sync --peer "$PG" "$MA"
"$MIRRORFS" pause "$MA" "$PG" >/dev/null
"$MIRRORFS" resume "$MB" "$PB" >/dev/null
out=$("$MIRRORFS" sync "$MB" 2>&1)
assert_eq 1 "$?" "B: sync to A's replica exits 1 ($out)"
err=$(pstat "$MB" "$PB" .last_error)
assert_match "replica .*is mirrored from $SRC_A" "$err" "B: status last_error names A's uuid"
assert_eq failed "$(pstat "$MB" "$PB" .state)" "B: status state failed"
assert_eq "claim" "$(newest_snap "$RG")" "the replica still holds A's snapshot only"
check "the replica has nothing of B" test ! -e "$RG/fromb"
check "B: peer remove" "$MIRRORFS" peer remove "$MB" "$PB"
check "A: peer remove of the second replica" "$MIRRORFS" peer remove "$MA" "$PG"
mfs_umount "$MB"
SNAPS+=(claim)

# ---------------------------------------------------------------------------
section "pause / resume"
check "pause (all peers)" "$MIRRORFS" pause "$MA"
assert_eq "paused true" "$(pstat "$MA" "$P1" '"\(.state) \(.paused)"')" "status: paused"
assert_eq "true" "$("$MIRRORFS" peer list --json "$MA" | jq -r '.[0].paused')" "peer list: paused"
before=$(snap_names "$R1")
echo p1 >"$MA/x/paused1"
mkdir "$MA/.snap/p1"
echo p2 >"$MA/x/paused2"
mkdir "$MA/.snap/p2"
sleep 3
assert_eq "$before" "$(snap_names "$R1")" "a paused peer gets no snapshot"
check "a paused peer gets no data" test ! -e "$R1/x/paused1"
assert_eq "paused 2" "$(pstat "$MA" "$P1" '"\(.state) \(.pending)"')" "status: paused, 2 pending"
check "resume $P1" "$MIRRORFS" resume "$MA" "$P1"
wait_peer_at "after resume, the peer catches up without a sync command" "$MA" "$P1" p2 30
assert_eq "$before p1 p2" "$(snap_names "$R1")" "the replica got p1 then p2"
check "pause one peer by UUID" "$MIRRORFS" pause "$MA" "$P1"
assert_eq paused "$(pstat "$MA" "$P1" .state)" "status: paused again"
check "resume (all peers)" "$MIRRORFS" resume "$MA"
assert_eq "false" "$(pstat "$MA" "$P1" .paused)" "status: not paused"
SNAPS+=(p1 p2)
cmp_replica_snaps "every snapshot ever synced" "$MA" "$R1" "${SNAPS[@]}"

# ---------------------------------------------------------------------------
section "--snap-interval 2 ships snapshots on a schedule"
E=$T/e ME=$T/me R6=$T/r6
mkdir "$E" "$ME"
echo before >"$E/seed"
mfs_mount "$E" "$ME" --snap-interval 2
out=$("$MIRRORFS" peer add "$ME" "file://$R6" 2>&1)
P6=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$P6" "peer add to the interval mount"
t0=$(date +%s)
for i in 1 2 3 4 5 6 7; do
	echo "tick $i" >"$ME/tick$i"
	sleep 1
done
n=$(wc -w <<<"$(snap_names "$ME")")
assert_ge "$n" 3 "at least 3 scheduled snapshots in $(($(date +%s) - t0)) s ($(snap_names "$ME"))"
check "they are named mirror-YYYYmmdd-HHMMSS" bash -c '[ -z "$("$1" snap list --json "$2" | jq -r ".[].name" | grep -Ev "^mirror-[0-9]{8}-[0-9]{6}$")" ]' _ "$MIRRORFS" "$ME"
if wait_until 15 bash -c '[ "$(wc -w <<<"$("$1" snap list --json "$2" | jq -r ".[].name")")" -ge 3 ]' _ "$MIRRORFS" "$R6"; then
	ok "scheduled snapshots arrive on the replica without a sync command ($(snap_names "$R6"))"
else
	not_ok "scheduled snapshots arrive on the replica without a sync command" \
		"replica: $(snap_names "$R6")" "source: $(snap_names "$ME")" "status: $(pstat_line "$ME" "$P6")"
fi
"$MIRRORFS" pause "$ME" >/dev/null
wait_until 10 bash -c '[ "$("$1" status --json "$2" | jq -r ".[0].syncing_snapshot")" = null ]' _ "$MIRRORFS" "$ME"
rs=$(snap_names "$R6")
src=$(snap_names "$ME")
assert_eq "${src:0:${#rs}}" "$rs" "the replica's snapshots are the source's, in order"
# shellcheck disable=SC2086
cmp_replica_snaps "scheduled" "$ME" "$R6" $rs
mfs_umount "$ME"

# ---------------------------------------------------------------------------
section "kill -9 of mirrorfs serve mid-transfer: retries, converges, resumes"
D=$T/d MD=$T/md R5=$T/r5
mkdir "$D" "$MD"
mfs_mount "$D" "$MD"
DPID=$(mfs_pid "$MD")
mkdir "$MD/big"
head -c $((BIG_MB * 1048576)) /dev/urandom | (cd "$MD/big" && split -b 64K -a 5 - f)
assert_eq $((BIG_MB * 16)) "$(find "$MD/big" -type f | wc -l)" "$BIG_MB MiB in $((BIG_MB * 16)) files of 64 KiB"
out=$("$MIRRORFS" peer add "$MD" "file://$R5" 2>&1)
P5=$(tail -n 1 <<<"$out")
assert_match "$UUID_RE" "$P5" "peer add"
mkdir "$MD/.snap/big"
check "sync --no-wait starts the transfer" "$MIRRORFS" sync --no-wait "$MD"
kills=0
last_at=0
full=0
prev=""
for ((k = 1; k <= KILLS; k++)); do
	# kill k at >= k/(KILLS+1) of the stream plus a random bit, so that a
	# restart instead of a resume would show in the bytes of the last attempt.
	# A whole attempt can take less time than one status poll, so catch
	# this attempt's serve as soon as it exists, stop it (the sender then
	# waits on the pipe) and let it run in short steps until it is far enough.
	want=0
	got=""
	pids=""
	for ((i = 0; i < 3000; i++)); do
		pids=$(serve_pids "$DPID")
		[ -n "$pids" ] && [ "$pids" != "$prev" ] && break
		pids=""
		sleep 0.01
	done
	if [ -z "$pids" ]; then
		diag "kill $k: no serve process found (status: $(pstat_line "$MD" "$P5"))"
		break
	fi
	prev=$pids
	# shellcheck disable=SC2086
	kill -STOP $pids
	for ((i = 0; i < 2000; i++)); do
		read -r st b tot < <(pstat "$MD" "$P5" '"\(.state) \(.syncing_bytes // 0) \(.syncing_total // 0)"')
		[ "$st" = idle ] && break
		if [ "$st" = syncing ] && ((tot > 0)); then
			full=$tot
			((want == 0)) && want=$((tot * k / (KILLS + 1) + RANDOM % (tot / (4 * (KILLS + 1)) + 1)))
			((b >= want)) && { got=$b; break; }
		fi
		# shellcheck disable=SC2086
		kill -CONT $pids 2>/dev/null
		sleep 0.002
		# shellcheck disable=SC2086
		kill -STOP $pids 2>/dev/null || break
	done
	if [ -z "$got" ]; then
		# shellcheck disable=SC2086
		kill -CONT $pids 2>/dev/null
		diag "kill $k: no sync in flight at >= $want bytes (status: $(pstat_line "$MD" "$P5"))"
		break
	fi
	# shellcheck disable=SC2086
	kill -KILL $pids
	kills=$((kills + 1))
	last_at=$got
	diag "kill $k: serve pid $pids killed at $got of $tot bytes"
	# the failure, then the retry
	wait_until 20 bash -c '[ "$("$1" status --json "$2" | jq -r ".[0].state")" != syncing ]' _ "$MIRRORFS" "$MD"
	diag "after kill $k: $(pstat_line "$MD" "$P5")"
done
assert_eq "$KILLS" "$kills" "serve was killed $KILLS times mid-transfer"
wait_peer_at "the peer converges to 'big' after the kills" "$MD" "$P5" big 180
e=$("$MIRRORFS" status --json "$MD" | jq -c '.[0]')
diag "status: $e"
total=$(jq -r .total_bytes_sent <<<"$e")
lastsent=$(jq -r .last_bytes_sent <<<"$e")
lastraw=$(jq -r .last_bytes_raw <<<"$e")
assert_eq 0 "$(jq -r .failures <<<"$e")" "failures reset after convergence"
if ((full > 0)) && [[ $total =~ ^[0-9]+$ ]] && ((total < (kills + 1) * full * 2 / 3)); then
	ok "total_bytes_sent $total is well below (kills + 1) x full = $(((kills + 1) * full))"
else
	not_ok "total_bytes_sent is well below (kills + 1) x full" "total_bytes_sent=$total full=$full kills=$kills"
fi
# a restart would send the whole stream again in the last attempt
if ((full > 0)) && [[ $lastraw =~ ^[0-9]+$ ]] && ((lastraw < full - last_at + full / 10)); then
	ok "the last attempt resumed: it carried $lastraw raw bytes, < the $((full - last_at)) left after the last kill + 10%"
else
	not_ok "the last attempt resumed where the killed one stopped" \
		"last_bytes_raw=$lastraw last_bytes_sent=$lastsent; the last kill was at $last_at of $full"
fi
if [[ $total =~ ^[0-9]+$ ]] && ((total >= full)); then
	ok "total_bytes_sent ($total) counts the killed attempts' bytes too (>= the stream's $full)"
else
	not_ok "total_bytes_sent counts the bytes of the killed attempts too" \
		"total_bytes_sent=$total < $full, the data bytes the replica needed (only the last attempt is counted?)"
fi
assert_eq "big" "$(newest_snap "$R5")" "the replica's newest snapshot is 'big'"
check "no staging directory is left on the replica" test ! -e "$R5/.mirrorfs.recv"
"$MIRRORFS" pause "$MD" >/dev/null
cmp_replica_snaps "after $kills kills" "$MD" "$R5" big
mfs_umount "$MD"

# ---------------------------------------------------------------------------
section "unmounted: sync runs in the command itself"
mfs_umount "$MA"
check "snap create u1 (unmounted)" "$MIRRORFS" snap create "$A" u1
check "sync (unmounted) with u1 pending" "$MIRRORFS" sync "$A"
assert_eq "u1" "$(newest_snap "$A")" "sync ships the pending u1 and takes no snapshot of its own"
assert_eq "u1" "$(pstat "$A" "$P1" .last_snapshot)" "status (unmounted): the peer has u1"
assert_eq "u1" "$(newest_snap "$R1")" "the replica has u1"
check "sync (unmounted) with nothing pending" "$MIRRORFS" sync "$A"
new=$(newest_snap "$A")
assert_match '^mirror-[0-9]{8}-[0-9]{6}$' "$new" "it takes a mirror-YYYYmmdd-HHMMSS snapshot"
assert_eq "$new" "$(newest_snap "$R1")" "the replica has it"
check "mirrorfs check of the source" "$MIRRORFS" check "$A"
check "mirrorfs check of the replica" "$MIRRORFS" check "$R1"

done_testing
