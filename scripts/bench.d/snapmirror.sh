# shellcheck shell=bash
# Sourced by scripts/bench: the snapshot and mirroring workloads. Each
# wl_NAME function runs one workload with the helpers scripts/bench defines
# (fs_mount/fs_umount, fresh_dirs, drop_caches, warm_drop, fio_run, stats,
# note, fmt, calc, now) and adds its rows to the result arrays (R_NAME ...).
#
#   snap-create-1k    tree of 1,000 files built through the mount; 20 times
#                     (a 4 KiB write, then a timed mkdir .snap/sN); median, p90
#   snap-create-100k  the same on 100,000 files (--quick: 10,000); compared
#                     with the 1k median (within 2x)
#   cow-overhead      fio seq write bs=1M and random 4 KiB write over an
#                     existing file: no snapshot vs the first pass after a
#                     snapshot vs the second pass (same snapshot)
#   snap-read         cold fio seq read of .snap/S/f (half its 64 KiB chunks
#                     overwritten after S: half come from the CoW store) vs f
#   mirror-vs-rsync   throwaway sshd on 127.0.0.1; 100,000 small files + 3 x
#                     256 MiB (--quick: 10,000 + 3 x 32 MiB); initial and
#                     incremental mirrorfs sync vs rsync -a over the same sshd;
#                     incremental on a 10x smaller tree for the scaling row
#
# The snapshot workloads run min(ROUNDS, 3) rounds where they repeat at all.

DESCRIPTION["snap-create-1k"]="time of mkdir .snap/NAME (20x) on a tree of 1,000 files"
DESCRIPTION["snap-create-100k"]="time of mkdir .snap/NAME (20x) on a tree of 100,000 files (quick: 10,000)"
DESCRIPTION["cow-overhead"]="fio overwrite (seq 1M, rand 4K) right after a snapshot, 1st and 2nd pass, vs no snapshot"
DESCRIPTION["snap-read"]="cold sequential read of .snap/NAME/f (half CoW) vs the live f"
DESCRIPTION["mirror-vs-rsync"]="mirrorfs sync vs rsync -a over a loopback sshd: initial, incremental, bytes, scaling"

SNAP_COUNT=20
SNAP_BIG_FILES=$((DIV > 1 ? 10000 : 100000))
COW_MIB=$((256 / DIV))
SREAD_MIB=$((256 / DIV))
MIR_FILES=$((DIV > 1 ? 10000 : 100000))
MIR_BIG_MIB=$((256 / DIV))
SM_ROUNDS=$((ROUNDS < 3 ? ROUNDS : 3))

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# addrow NAME BASELINE MFS RATIO TARGET VERDICT: a row of the final table
addrow() {
	R_NAME+=("$1") R_DIRECT+=("$2") R_MFS+=("$3") R_RATIO+=("$4") R_TARGET+=("$5") R_VERDICT+=("$6")
	[[ -n $REFERENCE ]] && R_VERDICT[-1]="(reference)"
	printf '  %-36s base %-26s %s %-26s ratio %-18s target %-22s %s\n' \
		"$1" "$2" "$FS_LABEL" "$3" "$4" "$5" "${R_VERDICT[-1]}"
}

# verdict EXPR: "met" if the awk expression is true
verdict() { awk "BEGIN { print ($*) ? \"met\" : \"MISSED\" }"; }

# smcell "V1 V2 ..." PREC UNIT: median (min–max) over the values given
smcell() {
	local med lo hi n
	n=$(wc -w <<<"$1")
	read -r med lo hi < <(stats "$1")
	if ((n > 1)); then
		echo "$(fmt "$med" "$2") $3 ($(fmt "$lo" "$2")–$(fmt "$hi" "$2"))"
	else
		echo "$(fmt "$med" "$2") $3"
	fi
}
median() { stats "$1" | cut -d' ' -f1; }

# The workloads' own C helper (trees, incompressible data, timed mkdirs).
SMB=
build_smb() {
	[[ -n $SMB ]] && return 0
	SMB=$T/tools/smb
	cat >"$SMB.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
static void fail(const char *what, const char *name)
{
	fprintf(stderr, "smb: %s '%s': %s\n", what, name, strerror(errno));
	exit(1);
}
static uint64_t x = 0x9E3779B97F4A7C15ull;
static void fill(char *b, size_t n)      /* incompressible bytes */
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		memcpy(b + i, &x, 8);
	}
}
static void wr(int fd, const char *b, size_t n, const char *name)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w <= 0)
			fail("cannot write", name);
		b += w, n -= (size_t)w;
	}
}

/* smb tree DIR N SEED: N files of 1..4096 bytes, 1,000 per subdirectory */
static int tree(const char *dir, long n)
{
	static char buf[4096], name[4200];
	double t0 = now();
	for (long i = 0; i < n; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "%s/d%04ld", dir, i / 1000);
			if (mkdir(name, 0755) < 0 && errno != EEXIST)
				fail("cannot mkdir", name);
		}
		snprintf(name, sizeof(name), "%s/d%04ld/f%07ld", dir, i / 1000, i);
		size_t sz = (size_t)(i * 7919 % 4096) + 1;
		fill(buf, sizeof(buf));
		int fd = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0)
			fail("cannot create", name);
		wr(fd, buf, sz, name);
		if (close(fd) < 0)
			fail("cannot close", name);
	}
	printf("%ld %.6f\n", n, now() - t0);
	return 0;
}

/* smb data FILE MIB append|trunc: MIB MiB of incompressible data, fsync */
static int data(const char *path, long mib, int append)
{
	static char buf[1 << 20];
	int fd = open(path, O_CREAT | O_WRONLY | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		fail("cannot open", path);
	for (long i = 0; i < mib; i++) {
		fill(buf, sizeof(buf));
		wr(fd, buf, sizeof(buf), path);
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		fail("cannot fsync", path);
	return 0;
}

/* smb mkdirs DIR PREFIX N TOUCHFILE: N times (pwrite 4 KiB to TOUCHFILE,
 * then a timed mkdir DIR/PREFIXi); one line of milliseconds per mkdir */
static int mkdirs(const char *dir, const char *prefix, long n, const char *touch)
{
	static char buf[4096], name[4200];
	int fd = open(touch, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		fail("cannot open", touch);
	for (long i = 0; i < n; i++) {
		fill(buf, sizeof(buf));
		if (pwrite(fd, buf, sizeof(buf), (off_t)i * 65536) != (ssize_t)sizeof(buf))
			fail("cannot write", touch);
		snprintf(name, sizeof(name), "%s/%s%ld", dir, prefix, i);
		double t0 = now();
		if (mkdir(name, 0755) < 0)
			fail("cannot mkdir", name);
		printf("%.3f\n", (now() - t0) * 1e3);
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "tree"))
		x ^= (uint64_t)atol(argv[4]) * 0x2545F4914F6CDD1Dull;
	if (argc == 6 && !strcmp(argv[1], "data"))
		x ^= (uint64_t)atol(argv[5]) * 0x2545F4914F6CDD1Dull;
	if (argc >= 4 && !strcmp(argv[1], "tree"))
		return tree(argv[2], atol(argv[3]));
	if (argc >= 5 && !strcmp(argv[1], "data"))
		return data(argv[2], atol(argv[3]), !strcmp(argv[4], "append"));
	if (argc == 6 && !strcmp(argv[1], "mkdirs"))
		return mkdirs(argv[2], argv[3], atol(argv[4]), argv[5]);
	fprintf(stderr, "usage: smb tree DIR N [SEED] | data FILE MIB append|trunc | "
		"mkdirs DIR PREFIX N TOUCHFILE\n");
	return 2;
}
EOF
	cc -O2 -std=gnu11 -Wall -Wextra -o "$SMB" "$SMB.c"
}

# make_tree DIR N: N small files under DIR (created); prints files/s.
make_tree() {
	local n s
	mkdir -p "$1"
	read -r n s < <("$SMB" tree "$1" "$2" "$RANDOM")
	note "    smb tree $1 $2: $n files in $(fmt "$s" 1) s ($(fmt "$(calc "$n / $s")" 0)/s)"
}

# ---------------------------------------------------------------------------
# snapshot creation
# ---------------------------------------------------------------------------

# snap_create N -> sets SC_MED SC_P90 SC_MAX SC_PLAIN (ms) for a tree of N files
declare -A SC_DONE=()
snap_create() {
	local n=$1 times plain t0
	build_smb
	fresh_dirs "snapc-$n" 1
	fs_mount "$BACKING"
	settle_inodes
	make_tree "$MNT/t" "$n"
	sync
	drop_caches
	note "    smb mkdirs $MNT/.snap s $SNAP_COUNT $MNT/touch   (each: pwrite 4 KiB to touch, timed mkdir .snap/sI)"
	t0=$(now)
	times=$("$SMB" mkdirs "$MNT/.snap" s "$SNAP_COUNT" "$MNT/touch")
	note "    $SNAP_COUNT snapshots in $(fmt "$(calc "$(now) - $t0")" 2) s; ms: $(tr '\n' ' ' <<<"$times")"
	plain=$("$SMB" mkdirs "$MNT/t" plain "$SNAP_COUNT" "$MNT/touch2")
	note "    plain mkdir through the mount (same loop), ms: $(tr '\n' ' ' <<<"$plain")"
	fs_umount
	note "    unmount $(fmt "$LAST_UMOUNT_S" 2) s"
	read -r SC_MED SC_P90 SC_MAX < <(sort -g <<<"$times" |
		awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			p = int(0.9 * NR + 0.999); print m, a[p], a[NR] }')
	SC_PLAIN=$(median "$(tr '\n' ' ' <<<"$plain")")
	SC_DONE[$n]="$SC_MED $SC_P90"
}

snap_create_row() {
	local n=$1
	addrow "mkdir .snap/S, $n files (ms, $SNAP_COUNT x)" \
		"plain mkdir $(fmt "$SC_PLAIN" 2) ms" \
		"med $(fmt "$SC_MED" 2) p90 $(fmt "$SC_P90" 2) ms" \
		"$(fmt "$(calc "$SC_MED / $SC_PLAIN")" 1)x plain" "median < 10 ms" \
		"$(verdict "$SC_MED < 10")"
}

wl_snap-create-1k() {
	[[ -n $REFERENCE ]] && { note "    skipped: no snapshots with --reference"; return 0; }
	snap_create 1000
	snap_create_row 1000
}

wl_snap-create-100k() {
	[[ -n $REFERENCE ]] && { note "    skipped: no snapshots with --reference"; return 0; }
	local small big
	if [[ -z ${SC_DONE[1000]:-} ]]; then
		note "    (measuring the 1,000-file tree first, for the comparison)"
		snap_create 1000
	fi
	small=${SC_DONE[1000]%% *}
	snap_create "$SNAP_BIG_FILES"
	snap_create_row "$SNAP_BIG_FILES"
	big=$SC_MED
	addrow "mkdir .snap/S: $SNAP_BIG_FILES vs 1000 files" \
		"1000: $(fmt "$small" 2) ms" "$SNAP_BIG_FILES: $(fmt "$big" 2) ms" \
		"$(fmt "$(calc "$big / $small")" 2)x" "<= 2x" "$(verdict "$big / $small <= 2")"
}

# ---------------------------------------------------------------------------
# copy-on-write overhead
# ---------------------------------------------------------------------------

wl_cow-overhead() {
	[[ -n $REFERENCE ]] && { note "    skipped: no snapshots with --reference"; return 0; }
	local seq=(--name=cowseq --filename=seq.dat --rw=write --bs=1M --size=${COW_MIB}m
		--ioengine=psync --direct=0 --end_fsync=1)
	local rnd=(--name=cowrand --filename=rand.dat --rw=randwrite --bs=4k --size=${COW_MIB}m
		--io_size=${COW_MIB}m --ioengine=psync --direct=0 --end_fsync=1 --randrepeat=1)
	local -A v=()
	local r k pass
	for ((r = 1; r <= SM_ROUNDS; r++)); do
		fresh_dirs cow "$r"
		fs_mount "$BACKING"
		# lay both files out, then overwrite them with no snapshot
		fio_run "cow-layout-seq-$r" "$MNT" "${seq[@]}" >/dev/null
		fio_run "cow-layout-rand-$r" "$MNT" "${seq[@]/seq.dat/rand.dat}" >/dev/null
		for k in seq rnd; do
			warm_drop
			if [[ $k == seq ]]; then fio_run "cow-$k-nosnap-$r" "$MNT" "${seq[@]}"
			else fio_run "cow-$k-nosnap-$r" "$MNT" "${rnd[@]}"; fi
			v[$k-none]+=" $FIO_MIBS"
		done
		note "    mkdir $MNT/.snap/cow$r"
		mkdir "$MNT/.snap/cow$r"
		for k in seq rnd; do
			for pass in 1 2; do
				warm_drop
				if [[ $k == seq ]]; then fio_run "cow-$k-pass$pass-$r" "$MNT" "${seq[@]}"
				else fio_run "cow-$k-pass$pass-$r" "$MNT" "${rnd[@]}"; fi
				v[$k-$pass]+=" $FIO_MIBS"
			done
		done
		fs_umount
		note "    round $r: seq none/pass1/pass2 $(fmt "${v[seq-none]##* }" 0)/$(fmt "${v[seq-1]##* }" 0)/$(fmt "${v[seq-2]##* }" 0) MiB/s;" \
			"rand $(fmt "${v[rnd-none]##* }" 1)/$(fmt "${v[rnd-1]##* }" 1)/$(fmt "${v[rnd-2]##* }" 1) MiB/s;" \
			"CoW store: $(du -sh "$BACKING/.mirrorfs" 2>/dev/null | cut -f1)"
	done
	local name tgt p b m
	for k in seq rnd; do
		for pass in 1 2; do
			b=$(median "${v[$k-none]}") m=$(median "${v[$k-$pass]}")
			[[ $k == seq ]] && name="seq write 1M" || name="rand write 4K"
			if ((pass == 1)); then tgt=0.7; name+=", 1st pass after snap"
			else tgt=0.95; name+=", 2nd pass (steady)"; fi
			[[ $k == rnd && $pass == 1 ]] && tgt=-
			p=$(fmt "$(calc "$m / $b")" 2)
			addrow "$name (${COW_MIB} MiB)" "no snap $(smcell "${v[$k-none]}" 0 MiB/s)" \
				"$(smcell "${v[$k-$pass]}" 0 MiB/s)" "$p" \
				"$([[ $tgt == - ]] && echo - || echo ">= $tgt")" \
				"$([[ $tgt == - ]] && echo - || verdict "$p >= $tgt")"
		done
	done
}

# ---------------------------------------------------------------------------
# reading a snapshot
# ---------------------------------------------------------------------------

wl_snap-read() {
	[[ -n $REFERENCE ]] && { note "    skipped: no snapshots with --reference"; return 0; }
	local lay=(--name=layout --filename=f --rw=write --bs=1M --size=${SREAD_MIB}m
		--ioengine=psync --direct=0 --end_fsync=1 --refill_buffers)
	local half=(--name=half --filename=f --rw=write:64k --bs=64k --size=${SREAD_MIB}m
		--ioengine=psync --direct=0 --end_fsync=1 --refill_buffers)
	local rd=(--name=read --filename=f --rw=read --bs=1M --size=${SREAD_MIB}m
		--ioengine=psync --direct=0)
	local lv= sv= r
	fresh_dirs snapread 1
	fs_mount "$BACKING"
	fio_run snapread-layout "$MNT" "${lay[@]}" >/dev/null
	note "    mkdir $MNT/.snap/S"
	mkdir "$MNT/.snap/S"
	fio_run snapread-half "$MNT" "${half[@]}" >/dev/null
	note "    overwrote every other 64 KiB chunk; CoW store now $(du -sh "$BACKING/.mirrorfs" | cut -f1)"
	cmp -s "$MNT/f" "$MNT/.snap/S/f" && die "snap-read: .snap/S/f equals f: the overwrite did not happen"
	fs_umount
	for ((r = 1; r <= ROUNDS; r++)); do
		fs_mount "$BACKING"
		warm_drop
		fio_run "snapread-live-$r" "$MNT" "${rd[@]}"
		lv+=" $FIO_MIBS"
		fs_umount
		fs_mount "$BACKING"
		warm_drop
		fio_run "snapread-snap-$r" "$MNT/.snap/S" "${rd[@]}"
		sv+=" $FIO_MIBS"
		fs_umount
		note "    round $r: live f $(fmt "${lv##* }" 0) MiB/s, .snap/S/f $(fmt "$FIO_MIBS" 0) MiB/s"
	done
	local p
	p=$(fmt "$(calc "$(median "$sv") / $(median "$lv")")" 2)
	addrow "cold read .snap/S/f, half CoW (${SREAD_MIB} MiB)" "live f $(smcell "$lv" 0 MiB/s)" \
		"$(smcell "$sv" 0 MiB/s)" "$p" ">= 0.8" "$(verdict "$p >= 0.8")"
}

# ---------------------------------------------------------------------------
# mirroring vs rsync over a throwaway sshd on 127.0.0.1
# ---------------------------------------------------------------------------

SM_SSHD_DIR= SM_SSHD_PID= SM_PORT=

sm_descendants() {
	local c
	for c in $(pgrep -P "$1" || true); do
		sm_descendants "$c"
		echo "$c"
	done
}

sm_sshd_stop() {
	[[ -n $SM_SSHD_PID ]] || return 0
	local pids i
	pids=$(sm_descendants "$SM_SSHD_PID")
	# shellcheck disable=SC2086
	[[ -n $pids ]] && { kill -TERM $pids 2>/dev/null || true; }
	kill -TERM "$SM_SSHD_PID" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do alive "$SM_SSHD_PID" || break; sleep 0.1; done
	if alive "$SM_SSHD_PID"; then kill -KILL "$SM_SSHD_PID" 2>/dev/null || true; fi
	SM_SSHD_PID=
	return 0
}

# The bench's cleanup also stops our sshd (before it unmounts).
eval "sm_orig_cleanup() $(declare -f cleanup | sed 1d)"
cleanup() {
	local rc=$?
	set +e
	sm_sshd_stop
	(exit "$rc")
	sm_orig_cleanup
}

sm_sshd_start() {
	local s=$T/sshd i p used
	mkdir -p "$s" /run/sshd
	ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$s/hostkey"
	ssh-keygen -q -t ed25519 -N '' -C bench-rsync -f "$s/rsynckey"
	cat "$s/rsynckey.pub" >"$s/authorized_keys"
	used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }')
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		grep -qx "$p" <<<"$used" || break
	done
	SM_PORT=$p
	cat >"$s/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $SM_PORT
		HostKey $s/hostkey
		PidFile $s/sshd.pid
		AuthorizedKeysFile $s/authorized_keys
		StrictModes no
		UsePAM no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
		LogLevel INFO
	EOF
	/usr/sbin/sshd -f "$s/sshd_config" -E "$s/sshd.log"
	for ((i = 0; i < 100; i++)); do
		[[ -s $s/sshd.pid ]] && ss -Hltn "sport = :$SM_PORT" | grep -q . && break
		sleep 0.05
	done
	[[ -s $s/sshd.pid ]] || die "cannot start sshd: $(cat "$s/sshd.log")"
	SM_SSHD_PID=$(<"$s/sshd.pid")
	SM_SSHD_DIR=$s
	SSH_CMD="ssh -p $SM_PORT -i $s/rsynckey -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
	note "    sshd on 127.0.0.1:$SM_PORT (pid $SM_SSHD_PID)"
}

# mfs_peer REPLICA SITE: bootstrap a replica (untimed: the replica host's
# part), then import the token into $MNT (timed by the caller)
mfs_bootstrap() {
	"$MIRRORFS" peer bootstrap create "$1" --site "$2" --host 127.0.0.1 --port "$SM_PORT" \
		--user root --host-key-file "$SM_SSHD_DIR/hostkey.pub" \
		--authorized-keys "$SM_SSHD_DIR/authorized_keys" --output "$T/token-$2" >/dev/null
}

# time_mfs_sync NAME -> sets MS_T (wall s), MS_SENT, MS_RAW, MS_DUR from status
time_mfs_sync() {
	local t0 st
	t0=$(now)
	"$MIRRORFS" sync --snap-pattern "$1" "$MNT" >"$T/logs/sync-$1.out" 2>&1 ||
		die "mirrorfs sync $1 failed: $(cat "$T/logs/sync-$1.out")"
	MS_T=$(calc "$(now) - $t0")
	st=$("$MIRRORFS" status --json "$MNT")
	echo "$st" >"$T/logs/status-$1.json"
	read -r MS_SENT MS_RAW MS_DUR < <(jq -r '.[0] | "\(.last_bytes_sent) \(.last_bytes_raw) \(.last_duration_seconds)"' <<<"$st")
	note "    mirrorfs sync --snap-pattern $1 $MNT: $(fmt "$MS_T" 2) s; status: sent $MS_SENT B, raw $MS_RAW B, duration $MS_DUR s"
}

# time_rsync SRC DEST -> RS_T, RS_SENT, RS_RECV
time_rsync() {
	local t0 out
	t0=$(now)
	out=$(rsync -a --stats --exclude=/.mirrorfs -e "$SSH_CMD" "$1/" "root@127.0.0.1:$2/" 2>&1) ||
		die "rsync failed: $out"
	RS_T=$(calc "$(now) - $t0")
	RS_SENT=$(awk -F': ' '/^Total bytes sent/ { gsub(/,/, "", $2); print $2 }' <<<"$out")
	RS_RECV=$(awk -F': ' '/^Total bytes received/ { gsub(/,/, "", $2); print $2 }' <<<"$out")
	note "    rsync: $(fmt "$RS_T" 2) s; sent $RS_SENT B, received $RS_RECV B"
}

# the one change of an incremental round: rewrite one small file, append
# 1 MiB to one large file (through the mount)
mir_change() {
	local r=$1 nbig=$2
	printf 'changed in round %s\n' "$r" >"$MNT/t/d0000/f$(printf %07d "$r")"
	"$SMB" data "$MNT/big$(((r - 1) % nbig + 1))" 1 append "$r"
	sync
}

wl_mirror-vs-rsync() {
	[[ -n $REFERENCE ]] && { note "    skipped: no mirroring with --reference"; return 0; }
	for tool in rsync ssh ssh-keygen ss pgrep; do
		command -v "$tool" >/dev/null || die "mirror-vs-rsync needs '$tool'"
	done
	[[ -x /usr/sbin/sshd ]] || die "mirror-vs-rsync needs /usr/sbin/sshd (openssh-server)"
	build_smb
	sm_sshd_start
	local r i src rm=$T/replica-mfs rr=$T/replica-rsync
	local mi_t mi_imp ri_t ri_sent mf_t= mf_sent= mf_raw= rf_t= rf_sent= rf_recv= ms_t=
	note "    rsync command: rsync -a --stats --exclude=/.mirrorfs -e \"$SSH_CMD\" BACKING/ root@127.0.0.1:$rr/"

	# --- the big tree
	fresh_dirs mirror 1
	src=$BACKING
	fs_mount "$BACKING"
	settle_inodes
	make_tree "$MNT/t" "$MIR_FILES"
	for i in 1 2 3; do "$SMB" data "$MNT/big$i" "$MIR_BIG_MIB" trunc "$i"; done
	sync
	note "    source: $MIR_FILES files + 3 x $MIR_BIG_MIB MiB (incompressible); backing $(du -sh --exclude=.mirrorfs "$src" | cut -f1)"
	mkdir -p "$rr"
	mfs_bootstrap "$rm" bench

	# initial: mirrorfs (import = peer add with the connection check, then sync)
	drop_caches
	note "    mirrorfs peer bootstrap import $MNT TOKEN && mirrorfs sync --snap-pattern initial $MNT"
	local t0
	t0=$(now)
	"$MIRRORFS" peer bootstrap import "$MNT" "$T/token-bench" >/dev/null
	mi_imp=$(calc "$(now) - $t0")
	time_mfs_sync initial
	mi_t=$(calc "$mi_imp + $MS_T")
	note "    initial mirrorfs: import $(fmt "$mi_imp" 2) s + sync $(fmt "$MS_T" 2) s"
	local mi_sent=$MS_SENT mi_raw=$MS_RAW
	# initial: rsync of the backing dir (no FUSE in its way)
	drop_caches
	time_rsync "$src" "$rr"
	ri_t=$RS_T ri_sent=$RS_SENT

	# incremental rounds
	for ((r = 1; r <= SM_ROUNDS; r++)); do
		mir_change "$r" 3
		drop_caches
		time_mfs_sync "inc$r"
		mf_t+=" $MS_T" mf_sent+=" $MS_SENT" mf_raw+=" $MS_RAW"
		drop_caches
		time_rsync "$src" "$rr"
		rf_t+=" $RS_T" rf_sent+=" $RS_SENT" rf_recv+=" $RS_RECV"
	done
	fs_umount

	# --- the same change on a 10x smaller tree (mirrorfs only)
	fresh_dirs mirror-small 1
	fs_mount "$BACKING"
	settle_inodes
	make_tree "$MNT/t" $((MIR_FILES / 10))
	"$SMB" data "$MNT/big1" "$MIR_BIG_MIB" trunc 1
	sync
	mfs_bootstrap "$T/replica-mfs-small" small
	"$MIRRORFS" peer bootstrap import "$MNT" "$T/token-small" >/dev/null
	time_mfs_sync initial
	for ((r = 1; r <= SM_ROUNDS; r++)); do
		mir_change "$r" 1
		drop_caches
		time_mfs_sync "inc$r"
		ms_t+=" $MS_T"
	done
	fs_umount
	sm_sshd_stop
	note "    replicas: mirrorfs $(du -sh "$rm" | cut -f1), rsync $(du -sh "$rr" | cut -f1)"

	local p m b
	p=$(calc "$mi_t / $ri_t")
	addrow "initial sync, $MIR_FILES files + 3x$MIR_BIG_MIB MiB" "rsync -a $(fmt "$ri_t" 1) s" \
		"$(fmt "$mi_t" 1) s" "$(fmt "$p" 2)x rsync" "<= 1.0x rsync" "$(verdict "$p <= 1")"
	addrow "  initial, bytes on the wire" "rsync $(fmt "$(calc "$ri_sent / 1e6")" 1) MB" \
		"$(fmt "$(calc "$mi_sent / 1e6")" 1) MB (raw $(fmt "$(calc "$mi_raw / 1e6")" 1))" \
		"$(fmt "$(calc "$mi_sent / $ri_sent")" 2)" "-" "-"
	m=$(median "$mf_t") b=$(median "$rf_t")
	p=$(calc "$b / $m")
	addrow "incremental sync (1 small + 1 MiB append)" "rsync -a $(smcell "$rf_t" 2 s)" \
		"$(smcell "$mf_t" 2 s)" "$(fmt "$p" 1)x faster" ">= 10x faster" "$(verdict "$p >= 10")"
	m=$(median "$mf_sent")
	addrow "  incremental, bytes on the wire" "rsync sent $(fmt "$(calc "$(median "$rf_sent") / 1e6")" 2) MB" \
		"$(fmt "$(calc "$m / 1e6")" 2) MB (raw $(fmt "$(calc "$(median "$mf_raw") / 1e6")" 2))" \
		"$(fmt "$(calc "$m / $(median "$rf_sent")")" 2)" "<= 1.3 MB" "$(verdict "$m <= 1300000")"
	m=$(median "$mf_t") b=$(median "$ms_t")
	p=$(calc "$m / $b")
	addrow "incremental: $MIR_FILES vs $((MIR_FILES / 10)) files" \
		"$((MIR_FILES / 10)) files $(smcell "$ms_t" 2 s)" "$MIR_FILES files $(smcell "$mf_t" 2 s)" \
		"$(fmt "$p" 2)x" "<= 1.5x" "$(verdict "$p <= 1.5")"
}
