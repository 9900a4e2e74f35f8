#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_random: the same pseudo-random sequence of operations (fsstorm) on a
# directory in the mount and on a plain reference directory of the same
# filesystem, in lockstep: every result and errno must be the same, and the
# trees must be identical afterwards (contents, holes, modes, owners, mtimes,
# xattrs, hard-link structure), again after a remount, and the journal must
# agree with the backing tree (mirrorfs check).
#
# FSSTORM_SEEDS (default "1 2") and FSSTORM_OPS (default 10000) override.
# A divergence prints the replay command.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq
need_tools FSSTORM
mfs_init

SEEDS=${FSSTORM_SEEDS:-1 2}
OPS=${FSSTORM_OPS:-10000}

for seed in $SEEDS; do
	section "seed $seed, $OPS operations"
	B=$T/backing$seed M=$T/mnt$seed R=$T/ref$seed
	mkdir "$B" "$M" "$R"
	mfs_mount "$B" "$M"
	mkdir "$M/work"
	cmp_opts=()
	if out=$("$FSSTORM" --seed "$seed" --ops "$OPS" "$M/work" "$R" 2>&1); then
		ok "seed $seed: same results on the mount and the reference"
		diag "$out"
	else
		not_ok "seed $seed: same results on the mount and the reference" "$out"
		# it stopped before giving every entry fixed times: mtimes differ anyway
		cmp_opts=(--ignore mtime)
	fi
	check "seed $seed: mount and reference trees are identical ${cmp_opts[*]}" "$FSSTORM" --compare "${cmp_opts[@]}" "$M/work" "$R"
	check "seed $seed: the backing tree is identical to the reference ${cmp_opts[*]}" "$FSSTORM" --compare "${cmp_opts[@]}" "$B/work" "$R"
	check "seed $seed: the journal is valid JSON" bash -o pipefail -c '"$0" journal "$1" --json | jq -c . >/dev/null' "$MIRRORFS" "$M"
	mfs_umount "$M"
	check "seed $seed: mirrorfs check finds no drift" "$MIRRORFS" check "$B"
	mfs_mount "$B" "$M"
	check "seed $seed: identical after a remount ${cmp_opts[*]}" "$FSSTORM" --compare "${cmp_opts[@]}" "$M/work" "$R"
	mfs_umount "$M"
	rm -rf "$R"
done

done_testing
