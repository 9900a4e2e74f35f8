#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_fsx: data integrity under random data operations (tests/tools/fsx):
# pwrite/pread at unaligned offsets across 4 KiB and 64 KiB boundaries,
# mmap, truncate, fallocate modes, copy_file_range, O_APPEND, O_DIRECT,
# reopen, fsync, every byte checked against an in-memory model, with
# snapshots taken, read, copied from and deleted along the way, each checked
# against a copy of the model, also by a thread reading them with O_DIRECT
# while the files change. Then the same snapshots (and the live files)
# again after a remount, after more changes in the interval the remount
# interrupted, and after a second remount; `mirrorfs check` finds no drift.
#
# FSX_OPS (operations per run) and FSX_SEEDS (default "1 2") override. The
# default is smaller in a sanitizer build, which runs several times slower.
# A mismatch prints the operation log and the fsx command that replays it.

. "$(dirname "$0")/lib.sh"
need_fuse
need_tools FSX
mfs_init

# (not `ldd | grep -q`: under pipefail, ldd's SIGPIPE would fail the test)
case $(ldd "$MIRRORFS" 2>/dev/null) in
*libasan*) OPS=${FSX_OPS:-2500} ;;
*) OPS=${FSX_OPS:-5000} ;;
esac
SEEDS=${FSX_SEEDS:-1 2}
EVERY=$((OPS / 8 > 0 ? OPS / 8 : 1))
# a safety net, not the bound: fsx stops early (and passes) past it
DUR=40

# fsx_ok DESC ARGS...: fsx must exit 0; its summary line is shown
fsx_ok() {
	local desc=$1 out
	shift
	if out=$("$FSX" "$@" 2>&1); then
		ok "$desc"
		diag "$(tail -n 1 <<<"$out")"
	else
		not_ok "$desc" "$(tail -n 80 <<<"$out")"
	fi
}

section "the model against the kernel: a plain directory"
mkdir "$T/plain"
fsx_ok "fsx on a plain directory" --seed 1 --ops $((OPS / 2)) --duration $DUR "$T/plain"

B=$T/backing M=$T/mnt
mkdir "$B" "$M"
mfs_mount "$B" "$M"

for seed in $SEEDS; do
	section "seed $seed: $OPS operations with snapshots every $EVERY"
	mkdir "$M/w$seed"
	fsx_ok "seed $seed: files and snapshots equal the model" \
		--seed "$seed" --ops "$OPS" --duration $DUR --snap-dir "$M/.snap" \
		--snap-every "$EVERY" --snap-keep 4 --snap-readers 1 --save "$T/state$seed" "$M/w$seed"
done

section "small files: one 256 KiB file, every operation checked in full"
mkdir "$M/small"
fsx_ok "a small file checked after every operation" \
	--seed 7 --ops $((OPS * 2)) --duration $DUR --files 1 --max-size 256K --max-io 96K \
	--verify-every 1 --snap-dir "$M/.snap" --snap-every $((EVERY / 4 + 1)) --snap-keep 3 \
	--rm-snaps "$M/small"

# remount: unmount, check the backing directory for drift, mount again
remount() {
	mfs_umount "$M"
	check "mirrorfs check finds no drift" "$MIRRORFS" check "$B"
	mfs_mount "$B" "$M"
}

section "after a remount"
remount
for seed in $SEEDS; do
	fsx_ok "seed $seed: files and snapshots unchanged by the remount" \
		--check-saved "$T/state$seed" --snap-dir "$M/.snap" "$M/w$seed"
done

section "more changes in the interval the remount interrupted"
for seed in $SEEDS; do
	# the files as they are, overwritten further: the copy-on-write state of
	# the current interval comes from the journal now, not from memory
	fsx_ok "seed $seed: continued on the same files" \
		--seed $((seed + 100)) --reuse --ops "$OPS" --duration $DUR --snap-dir "$M/.snap" \
		--snap-every "$EVERY" --snap-keep 4 --save "$T/next$seed" "$M/w$seed"
	fsx_ok "seed $seed: the snapshots of the first run are unchanged" \
		--check-saved "$T/state$seed" --no-live --snap-dir "$M/.snap" "$M/w$seed"
done

section "after a second remount"
remount
for seed in $SEEDS; do
	fsx_ok "seed $seed: files and snapshots of the second run" \
		--check-saved "$T/next$seed" --snap-dir "$M/.snap" "$M/w$seed"
	fsx_ok "seed $seed: snapshots of the first run" \
		--check-saved "$T/state$seed" --no-live --snap-dir "$M/.snap" "$M/w$seed"
done
mfs_umount "$M"

done_testing
