#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_crash: kill -9 the daemon in the middle of a storm of writes, renames,
# unlinks and creates (three fsstorm --storm processes), at a different
# instant each round. The next mount must recover, the journal must still
# parse, every object in the tree must be known to the journal (a record
# names its ino: create, adopt, write, link, ...), and after a clean
# unmount `mirrorfs check` must find no drift.
#
# CRASH_ROUNDS (default 5) and CRASH_SEED (default: the pid) override; the
# seed of the kill instants is printed so a failure can be replayed.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq find sort comm
need_tools FSSTORM
mfs_init

ROUNDS=${CRASH_ROUNDS:-5}
CRASH_SEED=${CRASH_SEED:-$$}
RANDOM=$CRASH_SEED
diag "kill instants from CRASH_SEED=$CRASH_SEED"

# read_tree DIR: read every file and directory below DIR
read_tree() {
	find "$1" -xdev \( -type f -exec cat {} + \) -o \( -type d -exec ls -a {} + \) >/dev/null
}

B=$T/backing M=$T/mnt
mkdir "$B" "$M"
for ((round = 1; round <= ROUNDS; round++)); do
	section "round $round"
	mfs_mount "$B" "$M"
	mkdir -p "$M/w"
	storms=()
	for k in 1 2 3; do
		bg "$FSSTORM" --storm --seed $((round * 100 + k)) "$M/w"
		storms+=("$BG_PID")
	done
	ms=$((300 + RANDOM % 2200))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	mfs_alive # the daemon must not have died on its own
	for p in "${storms[@]}"; do
		kill -0 "$p" 2>/dev/null || not_ok "round $round: storm $p still running at the kill" "it exited early"
	done
	mfs_kill9 "$M"
	for p in "${storms[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait_exit "$p" 10 || bail "storm process $p does not die"
		wait "$p" 2>/dev/null
	done

	mfs_mount "$B" "$M"
	ok "round $round: the mount recovers after kill -9 at ${ms} ms"
	check "round $round: the whole tree is readable" read_tree "$M"
	if jnl_ok "$M"; then
		check "round $round: the journal is valid JSON" jq -c . <<<"$J"
		# every object in the tree must be named by some record
		jq -r 'select(.ino != null) | .ino' <<<"$J" | sort -u >"$T/jinos"
		find "$M" -xdev -mindepth 1 -printf '%i %P\n' | sort -k1,1 >"$T/tree"
		cut -d' ' -f1 "$T/tree" | sort -u >"$T/tinos"
		unknown=$(comm -23 "$T/tinos" "$T/jinos")
		if [ -z "$unknown" ]; then
			ok "round $round: every object in the tree has a journal record ($(wc -l <"$T/tinos") objects)"
		else
			not_ok "round $round: every object in the tree has a journal record" "no record names these (ino path):" \
				"$(grep -E "^($(tr '\n' '|' <<<"$unknown" | sed 's/|$//')) " "$T/tree" | head -n 20)"
		fi
	fi
	mfs_umount "$M"
	check "round $round: mirrorfs check finds no drift" "$MIRRORFS" check "$B"
done
check "the journal of the backing dir is valid JSON" bash -o pipefail -c '"$0" journal "$1" --json | jq -c . >/dev/null' "$MIRRORFS" "$B"

done_testing
