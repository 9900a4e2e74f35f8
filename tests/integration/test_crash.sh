#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_crash: kill -9 the daemon in the middle of a storm of writes, renames,
# unlinks and creates (three fsstorm --storm processes), at a different
# instant each round. The next mount must recover, the journal must still
# parse, every object in the tree must be known to the journal (a record
# names its ino: create, adopt, write, link, ...), and after a clean
# unmount `mirrorfs check` must find no drift. Meanwhile a witness writes
# files and fsyncs them: whatever fsync acknowledged must be there after the
# crash, byte for byte, with write records covering it.
#
# CRASH_ROUNDS (default 5) and CRASH_SEED (default: the pid) override; the
# seed of the kill instants is printed so a failure can be replayed.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq find sort comm
need_tools FSSTORM FSOP
mfs_init

ROUNDS=${CRASH_ROUNDS:-5}
CRASH_SEED=${CRASH_SEED:-$$}
RANDOM=$CRASH_SEED
diag "kill instants from CRASH_SEED=$CRASH_SEED"

# read_tree DIR: read every file and directory below DIR
read_tree() {
	find "$1" -xdev \( -type f -exec cat {} + \) -o \( -type d -exec ls -a {} + \) >/dev/null
}

# witness LOG DIR: write files of known content into DIR and fsync each;
# log "PATH LENGTH" once fsync acknowledged it. Runs until the mount dies.
witness() {
	local i=0 len out
	while :; do
		i=$((i + 1))
		len=$(((i * 7919) % 100000 + 1))
		out=$("$FSOP" pwrite "$2/witness$i" 0 "$len")
		[[ $out == OK* ]] || break
		[ "$("$FSOP" fsync "$2/witness$i")" = OK ] || break
		echo "witness$i $len" >>"$1"
	done
}

B=$T/backing M=$T/mnt
mkdir "$B" "$M"
for ((round = 1; round <= ROUNDS; round++)); do
	section "round $round"
	mfs_mount "$B" "$M"
	mkdir -p "$M/w" "$M/witness$round"
	: >"$T/witness$round"
	bg witness "$T/witness$round" "$M/witness$round"
	storms=("$BG_PID")
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
	lost=""
	while read -r f len; do
		out=$(fsop verify "$M/witness$round/$f" 0 "$len")
		[ "$out" = OK ] || lost+="$f ($len bytes): $out; "
	done <"$T/witness$round"
	if [ -z "$lost" ]; then
		ok "round $round: all $(wc -l <"$T/witness$round") fsync'd witness files are intact"
	else
		not_ok "round $round: fsync'd witness files are intact" "$lost"
	fi
	check "round $round: the whole tree is readable" read_tree "$M"
	if jnl_ok "$M"; then
		check "round $round: the journal is valid JSON" jq -c . <<<"$J"
		# every object in the tree must be named by some record
		jq -r 'select(.ino != null) | .ino' <<<"$J" | sort -u >"$T/jinos"
		find "$M" -xdev -mindepth 1 -printf '%i %P\n' | sort -k1,1 >"$T/tree"
		cut -d' ' -f1 "$T/tree" | sort -u >"$T/tinos"
		unknown=$(comm -23 "$T/tinos" "$T/jinos")
		# the fsync'd witness files: write records cover what was acknowledged
		jq -r 'select(.op == "write") | "\(.ino) \(.offset) \(.offset + .length)"' <<<"$J" >"$T/writes"
		find "$M/witness$round" -mindepth 1 -printf '%f %i\n' >"$T/wino"
		short=$(awk '
			FILENAME == ARGV[1] { if (!($1 in lo) || $2 < lo[$1]) lo[$1] = $2; if ($3 > hi[$1]) hi[$1] = $3; next }
			FILENAME == ARGV[2] { ino[$1] = $2; next }
			{ i = ino[$1]; if (!(i in lo) || lo[i] > 0 || hi[i] < $2)
				printf "%s (%d bytes, ino %s): writes cover [%s, %s); ", $1, $2, i, lo[i], hi[i] }
		' "$T/writes" "$T/wino" "$T/witness$round")
		if [ -z "$short" ]; then
			ok "round $round: write records cover every fsync'd witness file"
		else
			not_ok "round $round: write records cover every fsync'd witness file" "$short"
		fi
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
