#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_enospc: a full backing filesystem while copy-on-write preserves old
# data. The overwrite must fail with ENOSPC, nothing may be half-preserved,
# and the snapshot must stay exactly what it was; once space is freed the
# same overwrite succeeds and the snapshot is still intact. The backing
# directory is a small tmpfs so that "full" is quick and certain.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd cmp head dd
need_tools FSOP
mfs_init

B=$T/backing M=$T/mnt
mkdir "$B" "$M"
mount -t tmpfs -o size=96m tmpfs "$B" || bail "cannot mount a tmpfs at $B"
atexit umount -l "$B"
mfs_mount "$B" "$M"

section "fill the filesystem, snapshot, overwrite"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/orig"
check "an 8 MiB file through the mount" cp "$T/orig" "$M/f"
check "snapshot s1" mkdir "$M/.snap/s1"
# fill what is left: mirrorfs refuses to eat into the headroom it keeps for
# its journal, so this stops with ENOSPC a little before the disk is full
fill=$(dd if=/dev/zero of="$M/filler" bs=1M count=200 status=none 2>&1 || true)
case $fill in
*"No space left"*) ok "filling the filesystem through the mount stops with ENOSPC" ;;
*) not_ok "filling the filesystem through the mount stops with ENOSPC" "dd said: $fill" ;;
esac
diag "left after filling: $(df --output=avail -B1 "$B" | tail -n 1) bytes"

# overwriting the whole file needs 8 MiB of copies: there is no room
big=$(dd if=/dev/zero bs=1M count=8 status=none | dd of="$M/f" bs=1M conv=notrunc status=none 2>&1 || true)
case $big in
*"No space left"*) ok "an overwrite that needs more copy-on-write room than there is fails with ENOSPC" ;;
*) not_ok "an overwrite that needs more copy-on-write room than there is fails with ENOSPC" "dd said: $big" ;;
esac

check "the snapshot still equals the original" cmp "$T/orig" "$M/.snap/s1/f"

section "space freed: the overwrite goes through, the snapshot keeps the old data"
check "remove the filler" rm -f "$M/filler"
# The space comes back when the last reference to the inode goes: through
# FUSE that is the kernel's FORGET, a moment after the unlink. Wait for it.
for _ in $(seq 100); do
	[ "$(df --output=avail -B1 "$B" | tail -n 1)" -gt $((60 * 1024 * 1024)) ] && break
	sleep 0.05
done
diag "free after removing the filler: $(df --output=avail -B1 "$B" | tail -n 1) bytes"
check "overwrite the whole file" sh -c "dd if=/dev/zero bs=1M count=8 status=none | dd of='$M/f' bs=1M conv=notrunc status=none"
check "the live file is the new data" cmp <(head -c $((8 * 1024 * 1024)) /dev/zero) "$M/f"
check "the snapshot still equals the original" cmp "$T/orig" "$M/.snap/s1/f"
check "snapshot s2 after" mkdir "$M/.snap/s2"
check "s2 shows the new data" cmp <(head -c $((8 * 1024 * 1024)) /dev/zero) "$M/.snap/s2/f"

section "little room left: a sequential overwrite takes what fits"
# A sequential overwrite preserves 8 MiB ahead at once; with less room
# than that, each write must still get the chunks it overwrites.
check "a 1 MiB slack file" dd if=/dev/zero of="$M/slack" bs=1M count=1 status=none
fill=$(dd if=/dev/zero of="$M/filler" bs=1M count=200 status=none 2>&1 || true)
case $fill in
*"No space left"*) ok "the filesystem is full again" ;;
*) not_ok "the filesystem is full again" "dd said: $fill" ;;
esac
before=$(df --output=avail -B1 "$B" | tail -n 1)
check "remove the slack" rm -f "$M/slack"
for _ in $(seq 100); do
	[ "$(df --output=avail -B1 "$B" | tail -n 1)" -gt $((before + 512 * 1024)) ] && break
	sleep 0.05
done
head -c $((512 * 1024)) /dev/urandom >"$T/new"
check "overwrite 512 KiB in 64 KiB writes" dd if="$T/new" of="$M/f" bs=64k count=8 conv=notrunc status=none
check "the live file starts with the new data" cmp -n $((512 * 1024)) "$T/new" "$M/f"
check "s2 still shows the old data" cmp <(head -c $((8 * 1024 * 1024)) /dev/zero) "$M/.snap/s2/f"
check "s1 still equals the original" cmp "$T/orig" "$M/.snap/s1/f"
check "remove the filler" rm -f "$M/filler"

mfs_umount "$M"
check "mirrorfs check: no drift" "$MIRRORFS" check "$B"
done_testing
