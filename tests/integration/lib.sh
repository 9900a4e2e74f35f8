# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Sourced by every integration test: prerequisites, a private temp dir, real
# mirrorfs mounts with a guaranteed cleanup, and TAP-like assertions.
#
# Environment (meson sets these, see meson.build):
#   MIRRORFS  the mirrorfs program under test
#   FSOP      tests/tools/fsop     (one syscall, prints OK or the errno name)
#   FSSTORM   tests/tools/fsstorm  (random operations, tree comparison)
#   POSIXDIFF tests/tools/posixdiff (POSIX checks, one line each, to diff)
#   FSX       tests/tools/fsx      (random data operations checked against a model)
#   CI=true   a missing prerequisite fails the test instead of skipping it
#
# Every check prints "ok N - what" or "not ok N - what" followed by "#" lines
# of context; done_testing prints the plan and exits non-zero if any check
# failed. The EXIT trap unmounts whatever is still mounted (lazily as a last
# resort), kills leftover daemons and background jobs, and removes the temp
# dir, pass or fail.

set -u
set -o pipefail

T_NAME=$(basename "${0%.sh}")
T_N=0
T_FAILED=0
T_MOUNT_SEQ=0
declare -A T_PID=()     # mountpoint -> pid of `mirrorfs mount -f`
declare -A T_LOG=()     # mountpoint -> its log file
T_BG=()                 # background jobs to kill on exit
T_BINDS=()              # other mounts (bind mounts) to undo on exit
T_ATEXIT=()             # extra cleanup commands, run in reverse order
T=""                    # this test's private temp dir (see mfs_init)

# ---- reporting ---------------------------------------------------------------

diag() {
	local line
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}

ok() {
	T_N=$((T_N + 1))
	printf 'ok %d - %s\n' "$T_N" "$1"
}

# not_ok DESC [CONTEXT_LINE...]
not_ok() {
	T_N=$((T_N + 1))
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok %d - %s\n' "$T_N" "$1"
	shift
	[ $# -gt 0 ] && diag "$@"
	return 1
}

# skip_check DESC REASON: a single check that cannot run here
skip_check() {
	T_N=$((T_N + 1))
	printf 'ok %d - %s # SKIP %s\n' "$T_N" "$1" "$2"
}

# bail MSG: stop the test now (the EXIT trap still cleans up)
bail() {
	printf 'Bail out! %s\n' "$*"
	T_FAILED=$((T_FAILED + 1))
	exit 1
}

# skip_all REASON: the whole test cannot run here: exit 77 (meson: SKIP),
# except under CI=true where a missing prerequisite is a failure.
skip_all() {
	if [ "${CI:-}" = true ]; then
		printf 'Bail out! missing prerequisite under CI=true: %s\n' "$*"
		exit 1
	fi
	printf '1..0 # SKIP %s\n' "$*"
	exit 77
}

done_testing() {
	printf '1..%d\n' "$T_N"
	if [ "$T_FAILED" -gt 0 ]; then
		printf '# %s: %d of %d checks failed\n' "$T_NAME" "$T_FAILED" "$T_N"
		exit 1
	fi
	printf '# %s: all %d checks passed\n' "$T_NAME" "$T_N"
	exit 0
}

# ---- prerequisites -------------------------------------------------------------

need_root() {
	[ "$(id -u)" = 0 ] || skip_all "needs root"
}

need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "needs the '$c' command"
	done
}

need_fuse() {
	need_root
	need_cmd fusermount3
	[ -c /dev/fuse ] || skip_all "needs /dev/fuse"
}

# need_tools: the programs meson passes in must exist
need_tools() {
	local v
	for v in MIRRORFS "$@"; do
		[ -n "${!v:-}" ] || bail "\$$v is not set (run through meson test)"
		[ -x "${!v}" ] || bail "\$$v='${!v}' is not an executable"
	done
}

# ---- temp dir and cleanup ------------------------------------------------------------

# mfs_init: create $T (mode 0755 so that other users can reach what is
# below it) and install the cleanup trap. Call once, at the top.
mfs_init() {
	umask 022
	T=$(mktemp -d "/tmp/mfs-it-$T_NAME.XXXXXX") || bail "cannot create a temp dir"
	chmod 0755 "$T"
	trap mfs_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 141' PIPE
	trap 'exit 143' TERM
}

# atexit CMD...: run CMD during cleanup (before removing $T)
atexit() {
	T_ATEXIT+=("$(printf '%q ' "$@")")
}

# Is anything mounted exactly at $1 (any type)?
is_mounted() {
	awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts
}

# Is a mirrorfs mount at $1?
mfs_is_mounted() {
	awk -v m="$1" '$2 == m && $3 == "fuse.mirrorfs" { f = 1 } END { exit !f }' /proc/mounts
}

# Mountpoints at or below $1, deepest first.
mounts_below() {
	awk -v p="$1" '$2 == p || index($2, p "/") == 1 { print $2 }' /proc/mounts | sort -r
}

# wait_exit PID SECONDS: poll until PID is gone; 1 if it is still alive.
wait_exit() {
	local pid=$1 i n=$(($2 * 20))
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

mfs_cleanup() {
	local rc=$? m pid i
	set +e
	trap - EXIT HUP INT PIPE TERM
	for pid in "${T_BG[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	if [ -n "$T" ]; then
		for m in $(mounts_below "$T"); do
			# a bind mount is not ours to fusermount
			case " ${T_BINDS[*]} " in *" $m "*) continue ;; esac
			fusermount3 -u "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null
			printf '# cleanup: unmounted %s\n' "$m"
		done
	fi
	for m in "${!T_PID[@]}"; do
		pid=${T_PID[$m]}
		kill -TERM "$pid" 2>/dev/null && ! wait_exit "$pid" 5 && kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ((i = ${#T_BINDS[@]} - 1; i >= 0; i--)); do
		umount "${T_BINDS[i]}" 2>/dev/null || umount -l "${T_BINDS[i]}" 2>/dev/null
	done
	for ((i = ${#T_ATEXIT[@]} - 1; i >= 0; i--)); do
		eval "${T_ATEXIT[i]}" >/dev/null 2>&1
	done
	for pid in "${T_BG[@]}"; do
		wait_exit "$pid" 5 && wait "$pid" 2>/dev/null
	done
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ -n "$(mounts_below "$T")" ]; then
			printf '# cleanup: NOT removing %s: still mounted: %s\n' "$T" "$(mounts_below "$T" | tr '\n' ' ')"
			[ "$rc" = 0 ] && rc=1
		elif [ -n "${KEEP_TMP:-}" ]; then
			printf '# cleanup: keeping %s (KEEP_TMP)\n' "$T"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

# bg CMD...: start CMD in the background; killed at exit. Its pid is in $BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	T_BG+=("$BG_PID")
}

# bind_ro DIR: make DIR a read-only bind mount of itself (undone at exit)
bind_ro() {
	mount --bind "$1" "$1" || return 1
	T_BINDS+=("$1")
	mount -o remount,bind,ro "$1"
}

unbind() {
	local i
	umount "$1" || return 1
	for i in "${!T_BINDS[@]}"; do
		[ "${T_BINDS[i]}" = "$1" ] && unset 'T_BINDS[i]'
	done
	T_BINDS=("${T_BINDS[@]}")
}

# ---- mounting ---------------------------------------------------------------------------

# mfs_mount BACKING MNT [mount options...]: start `mirrorfs mount -f` in the
# background and wait (up to 10 s) for the mount to appear. Bails out if it
# does not: nothing after a failed mount means anything.
mfs_mount() {
	local b=$1 m pid log i
	m=$(realpath "$2") || bail "mountpoint '$2' does not exist"
	shift 2
	T_MOUNT_SEQ=$((T_MOUNT_SEQ + 1))
	log="$T/mirrorfs-$T_MOUNT_SEQ.log"
	"$MIRRORFS" mount -f "$@" "$b" "$m" >"$log" 2>&1 &
	pid=$!
	T_PID[$m]=$pid
	T_LOG[$m]=$log
	for ((i = 0; i < 200; i++)); do
		mfs_is_mounted "$m" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			local rc=$?
			unset 'T_PID[$m]'
			not_ok "mount $b on $m" "mirrorfs mount -f $* exited with status $rc before mounting" \
				"$(tail -n 20 "$log")"
			bail "cannot mount"
		fi
		sleep 0.05
	done
	not_ok "mount $b on $m" "no fuse.mirrorfs mount at $m after 10 s" "$(tail -n 20 "$log")"
	bail "cannot mount"
}

# mfs_pid MNT: pid of the daemon serving MNT
mfs_pid() {
	local m
	m=$(realpath "$1")
	printf '%s\n' "${T_PID[$m]:-}"
}

# mfs_umount MNT: fusermount3 -u (retrying while busy), then require the
# daemon to exit within 30 s with status 0. A crash, an ASan/UBSan report
# (the sanitizer makes the exit status non-zero) or a hang is a failure.
mfs_umount() {
	local m i err
	m=$(realpath "$1")
	for ((i = 0; i < 50; i++)); do
		err=$(fusermount3 -u "$m" 2>&1) && break
		sleep 0.1
	done
	if mfs_is_mounted "$m"; then
		not_ok "unmount $m" "fusermount3 -u failed for 5 s: $err"
		return 1
	fi
	mfs_reap "$m"
}

# has_exited PID: the process has exited: it is gone, or a zombie that its
# parent has not reaped yet (a daemon started by mfs_mount is our child)
has_exited() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# mfs_cli_umount MNT: `mirrorfs umount MNT` must succeed and return only
# once the daemon that served MNT has exited; then, as mfs_umount, that
# daemon must have exited with status 0.
mfs_cli_umount() {
	local m pid out
	m=$(realpath "$1")
	pid=${T_PID[$m]:-}
	if ! out=$("$MIRRORFS" umount "$m" 2>&1); then
		not_ok "mirrorfs umount $m" "$out"
		return 1
	fi
	if mfs_is_mounted "$m"; then
		not_ok "mirrorfs umount unmounted $m"
		return 1
	fi
	if [ -n "$pid" ]; then
		if has_exited "$pid"; then
			ok "mirrorfs umount $(basename "$m") returned after its daemon exited"
		else
			not_ok "mirrorfs umount $(basename "$m") returned after its daemon exited" \
				"pid $pid: $(cat "/proc/$pid/stat" 2>&1)"
		fi
	fi
	mfs_reap "$m"
}

# mfs_reap MNT: the daemon of MNT, unmounted, must exit within 30 s with status 0
mfs_reap() {
	local m=$1 pid log rc
	pid=${T_PID[$m]:-}
	log=${T_LOG[$m]:-/dev/null}
	[ -n "$pid" ] || return 0
	if ! wait_exit "$pid" 30; then
		kill -ABRT "$pid" 2>/dev/null
		wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		unset 'T_PID[$m]'
		not_ok "mirrorfs daemon for $m exits after unmount" "still running 30 s after the unmount (sent SIGABRT)" \
			"$(tail -n 30 "$log")"
		return 1
	fi
	wait "$pid"
	rc=$?
	unset 'T_PID[$m]'
	if [ "$rc" != 0 ]; then
		not_ok "mirrorfs daemon for $m exits cleanly after unmount" "exit status $rc" "$(tail -n 30 "$log")"
		return 1
	fi
	ok "mirrorfs daemon for $(basename "$m") exited cleanly after unmount"
}

# mfs_kill9 MNT: kill -9 the daemon, detach the dead mount
mfs_kill9() {
	local m pid i
	m=$(realpath "$1")
	pid=${T_PID[$m]:-}
	[ -n "$pid" ] || bail "no daemon recorded for $m"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	unset 'T_PID[$m]'
	fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		is_mounted "$m" || return 0
		sleep 0.05
	done
	bail "dead mount at $m does not go away"
}

# ---- assertions --------------------------------------------------------------------------

# cmp_tree DESC A B [fsstorm --compare options]: the trees must be identical
cmp_tree() {
	local desc=$1 a=$2 b=$3 out
	shift 3
	if out=$("$FSSTORM" --compare "$@" "$a" "$b" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "fsstorm --compare $* $a $b:" "$(head -n 20 <<<"$out")"
	fi
}

# check DESC CMD...: CMD must exit 0
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "command failed (status $?): $(printf '%q ' "$@")" "$out"
	fi
}

# check_fails DESC CMD...: CMD must exit non-zero
check_fails() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		not_ok "$desc" "command unexpectedly succeeded: $(printf '%q ' "$@")" "$out"
	else
		ok "$desc"
	fi
}

# assert_eq EXPECTED ACTUAL DESC
assert_eq() {
	if [ "$1" == "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "expected: $1" "     got: $2"
	fi
}

assert_ne() {
	if [ "$1" != "$2" ]; then
		ok "$3"
	else
		not_ok "$3" "expected anything but: $1"
	fi
}

# assert_match REGEX ACTUAL DESC (bash extended regex)
assert_match() {
	if [[ $2 =~ $1 ]]; then
		ok "$3"
	else
		not_ok "$3" "expected to match: $1" "                got: $2"
	fi
}

# assert_ge A B DESC: integer A >= B
assert_ge() {
	if [[ $1 =~ ^-?[0-9]+$ && $2 =~ ^-?[0-9]+$ ]] && (($1 >= $2)); then
		ok "$3"
	else
		not_ok "$3" "expected $1 >= $2"
	fi
}

# fsop ARGS...: run the fsop tool, print its one line
fsop() {
	"$FSOP" "$@"
}

# assert_errno FSOP_ARGS... EXPECTED: run `fsop FSOP_ARGS...`; its first word
# (OK or an errno name) must be EXPECTED; EXPECTED may list alternatives
# separated by '|' (e.g. "EPERM|ENOTSUP").
assert_errno() {
	local args=("${@:1:$#-1}") want=${!#} out got
	out=$("$FSOP" "${args[@]}" 2>&1)
	got=${out%% *}
	if [[ "|$want|" == *"|$got|"* ]]; then
		ok "$(printf '%s ' "${args[@]}")-> $got"
	else
		not_ok "$(printf '%s ' "${args[@]}")-> $want" "got: $out"
	fi
}

assert_ok() {
	assert_errno "$@" OK
}

# kv KEY LINE: the value of KEY=VALUE in an fsop output line
kv() {
	local w
	for w in $2; do
		[ "${w%%=*}" = "$1" ] && { printf '%s\n' "${w#*=}"; return 0; }
	done
	return 1
}

# st PATH KEY: one field of `fsop lstat PATH` (ino, type, mode, uid, gid,
# size, blocks, nlink, rdev, atime, mtime, ctime); prints the errno name if
# lstat fails.
st() {
	local out
	out=$("$FSOP" lstat "$1")
	case $out in
	OK*) kv "$2" "$out" ;;
	*) printf '%s\n' "$out" ;;
	esac
}

# ---- the journal ---------------------------------------------------------------------------

# jnl MNT|BACKING [ARGS...]: `mirrorfs journal ... --json`.
# A mutation returns once its record is queued for the next group commit
# (docs/HACKING.md, "Records are not waited for"); an fsync through the
# mount waits for every record queued before it. So when MNT is a mirrorfs
# mount, jnl fsyncs its root first: what it prints then covers every
# operation that returned before jnl was called.
jnl() {
	if [ -n "${FSOP:-}" ] && mfs_is_mounted "$(realpath "$1")"; then
		"$FSOP" fsync "$1" >/dev/null
	fi
	"$MIRRORFS" journal "$1" --json "${@:2}"
}

# jseq MNT: the highest seq in the journal (0 if empty)
jseq() {
	jnl "$1" | jq -s 'map(.seq) | max // 0'
}

# jcount MNT SINCE JQ_CONDITION: records after SINCE for which the condition holds
jcount() {
	jnl "$1" --since "$2" | jq -c "select($3)" | wc -l
}

# assert_journal DESC MNT SINCE JQ_CONDITION: at least one record after SINCE
# satisfies the condition (e.g. '.op == "create" and .path == "/a"')
assert_journal() {
	local desc=$1 m=$2 since=$3 cond=$4 n
	n=$(jcount "$m" "$since" "$cond")
	if [ "${n:-0}" -ge 1 ] 2>/dev/null; then
		ok "journal: $desc"
	else
		not_ok "journal: $desc" "no record after seq $since with: $cond" "records after $since:" \
			"$(jnl "$m" --since "$since" 2>&1 | head -n 20)"
	fi
}

# assert_journal_eventually DESC MNT SINCE JQ_CONDITION: like assert_journal,
# but polls for up to 5 s: data writes are committed by group commit, after
# the write returned (namespace operations must use assert_journal).
assert_journal_eventually() {
	local desc=$1 m=$2 since=$3 cond=$4 n i
	for ((i = 0; i < 50; i++)); do
		n=$(jcount "$m" "$since" "$cond")
		[ "${n:-0}" -ge 1 ] 2>/dev/null && { ok "journal: $desc"; return 0; }
		sleep 0.1
	done
	not_ok "journal: $desc" "no record after seq $since with: $cond (waited 5 s)" "records after $since:" \
		"$(jnl "$m" --since "$since" 2>&1 | head -n 20)"
}

# jcover MNT SINCE INO: "MIN_OFFSET MAX_END COUNT" of the write records of
# INO after SINCE ("none" if there are none)
jcover() {
	jnl "$1" --since "$2" | jq -rs --argjson ino "$3" '
		[.[] | select(.op == "write" and .ino == $ino)] |
		if length == 0 then "none"
		else "\(map(.offset) | min) \(map(.offset + .length) | max) \(length)" end'
}

# holemap FILE: the data segments of FILE per SEEK_DATA/SEEK_HOLE, "[a,b) ..."
holemap() {
	local f=$1 off=0 d h out
	while :; do
		out=$("$FSOP" seek "$f" data "$off")
		case $out in
		OK*) d=${out#OK } ;;
		ENXIO) break ;;
		*) printf '(seek data %s: %s)' "$off" "$out"; return ;;
		esac
		out=$("$FSOP" seek "$f" hole "$d")
		case $out in
		OK*) h=${out#OK } ;;
		*) printf '(seek hole %s: %s)' "$d" "$out"; return ;;
		esac
		printf '[%s,%s) ' "$d" "$h"
		[ "$h" -gt "$d" ] || { printf '(no progress)'; return; }
		off=$h
	done
	printf 'end'
}

# mfs_alive: every daemon we started must still be running; if one died
# (crash, sanitizer abort), report its exit status and log and bail out:
# every later check would only repeat ENOTCONN.
mfs_alive() {
	local m pid rc
	for m in "${!T_PID[@]}"; do
		pid=${T_PID[$m]}
		kill -0 "$pid" 2>/dev/null && continue
		wait "$pid"
		rc=$?
		unset 'T_PID[$m]'
		not_ok "mirrorfs daemon for $m is alive" "it exited with status $rc$( ((rc > 128)) && printf ' (signal %d)' $((rc - 128)))" \
			"$(mfs_is_mounted "$m" && echo "the mount is still in /proc/mounts (a dead mount)" ||
				echo "the mount is gone from /proc/mounts: unmounted by someone else, or the daemon unmounted itself")" \
			"last lines of its log ${T_LOG[$m]}:" "$(tail -n 30 "${T_LOG[$m]}")"
		bail "the mirrorfs daemon died"
	done
}

# section NAME: start a group of checks (after checking the daemons live)
section() {
	mfs_alive
	printf '# --- %s\n' "$*"
}

# jnl_ok MNT [ARGS...]: like jnl, but a failing `mirrorfs journal` or empty
# output is a failed check; the output is left in $J.
jnl_ok() {
	local rc
	J=$(jnl "$@" 2>"$T/jnl.err")
	rc=$?
	if [ "$rc" != 0 ] || [ -z "$J" ]; then
		not_ok "mirrorfs journal $* --json prints records" "status $rc" "$(cat "$T/jnl.err")"
		return 1
	fi
}

# refcopy SRC DST: an exact reference copy. cp -a keeps modes, owners,
# times, xattrs and hard links, but its hole detection also turns blocks of
# zeros into holes (--sparse=auto does too, for files with holes), so the
# data segments of each regular file (SEEK_DATA/SEEK_HOLE of SRC) are
# written again, zeros included, and its times restored.
refcopy() {
	local f
	cp -a --sparse=always "$1" "$2" || return 1
	(cd "$1" && find . -type f -print0) | perl -e '
		use strict;
		my ($src, $dst) = @ARGV;
		$/ = "\0";
		while (my $f = <STDIN>) {
			chomp $f;
			open(my $s, "<", "$src/$f") or die "$src/$f: $!\n";
			open(my $d, "+<", "$dst/$f") or die "$dst/$f: $!\n";
			my $off = 0;
			while (defined(my $p = sysseek($s, $off, 3))) {    # SEEK_DATA
				my $h = sysseek($s, $p, 4);                # SEEK_HOLE
				defined $h or die "$src/$f: SEEK_HOLE: $!\n";
				while ($p < $h) {
					my $n = $h - $p > 1048576 ? 1048576 : $h - $p;
					my $buf;
					sysseek($s, $p, 0) or die;
					my $got = sysread($s, $buf, $n);
					die "$src/$f: read: $!\n" unless $got;
					sysseek($d, $p, 0) or die;
					syswrite($d, $buf) == $got or die "$dst/$f: write: $!\n";
					$p += $got;
				}
				$off = $h;
			}
		}' "$1" "$2" || return 1
	(cd "$1" && find . -type f -print0) | while IFS= read -r -d '' f; do
		touch -r "$1/$f" "$2/$f" || return 1
	done
}
