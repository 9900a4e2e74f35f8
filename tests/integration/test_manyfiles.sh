#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_manyfiles: more inodes than the daemon may open files.
#
# The daemon keeps an O_PATH fd per inode the kernel caches, but only up to
# half its open file limit: past that it closes the least recently used ones
# and reopens them by file handle when the kernel asks again. Here the
# daemon runs with a hard limit of 256 descriptors and the test works on
# 2,000 files: every operation must still work, on the right object, with
# the same inode numbers, and the daemon must stay under its limit. An
# unlinked file held open must keep working (its fd cannot be reopened by
# handle, so it is never closed).

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd getfattr setfattr find sort
mfs_init

LIMIT=256
DIRS=40 PER=50
B=$T/backing M=$T/mnt
mkdir "$B" "$M"
# Hard and soft: the daemon raises its soft limit to the hard one.
ulimit -n "$LIMIT" || bail "cannot lower the open file limit"
mfs_mount "$B" "$M"
pid=$(mfs_pid "$M")

# inodes M: "path inode" of every entry below M, sorted
inodes() {
	(cd "$1" && find . -mindepth 1 -printf '%p %i\n' | sort)
}

created=0
for ((d = 0; d < DIRS; d++)); do
	mkdir "$M/d$d" || break
	for ((f = 0; f < PER; f++)); do
		printf 'file %d/%d\n' "$d" "$f" >"$M/d$d/f$f" || break 2
		created=$((created + 1))
	done
done
assert_eq $((DIRS * PER)) "$created" "created $((DIRS * PER)) files in $DIRS directories"

nfd=$(ls "/proc/$pid/fd" | wc -l)
assert_ge "$LIMIT" "$nfd" "the daemon holds at most $LIMIT descriptors ($nfd)"
assert_ge "$LIMIT" "$(awk '/^Max open files/ { print $5 }' "/proc/$pid/limits")" \
	"the daemon's hard limit is the test's"

before=$(inodes "$M")

bad=0
for ((d = 0; d < DIRS; d++)); do
	for ((f = 0; f < PER; f++)); do
		[[ $(<"$M/d$d/f$f") == "file $d/$f" ]] || bad=$((bad + 1))
	done
done
assert_eq 0 "$bad" "every file reads back its own contents"
assert_eq "$before" "$(inodes "$M")" "inode numbers are the same after the fds were recycled"

# An unlinked open file: fstat, xattrs and data through its open descriptor.
exec 7<>"$M/d0/f0"
setfattr -n user.kept -v yes "$M/d0/f0"
rm "$M/d0/f0"
for ((d = 1; d < DIRS; d++)); do
	cat "$M/d$d"/* >/dev/null   # push every other fd through the cache
done
assert_eq "0" "$(stat -L -c %h /proc/self/fd/7)" "fstat of an unlinked open file: 0 links"
assert_eq "yes" "$(getfattr --absolute-names --only-values -n user.kept /proc/self/fd/7 2>&1)" \
	"xattr of an unlinked open file, after 2,000 other files were read"
assert_eq "file 0/0" "$(cat /proc/self/fd/7)" "an unlinked open file still reads"
exec 7>&-

# Operations on objects whose fd was closed meanwhile.
ino=$(stat -c %i "$M/d1/f1")
check "rename a file across directories" mv "$M/d1/f1" "$M/d39/renamed"
assert_eq "$ino" "$(stat -c %i "$M/d39/renamed")" "the renamed file keeps its inode number"
check "hard link" ln "$M/d39/renamed" "$M/d2/link"
assert_eq "2" "$(stat -c %h "$M/d2/link")" "both links counted"
check "chmod" chmod 600 "$M/d3/f3"
assert_eq "600" "$(stat -c %a "$M/d3/f3")" "mode changed"
check "setxattr on a recycled inode" setfattr -n user.a -v 1 "$M/d4/f4"
assert_eq "1" "$(getfattr --absolute-names --only-values -n user.a "$M/d4/f4" 2>&1)" "getxattr"
check "append" sh -c "echo more >>'$M/d5/f5'"
assert_eq "file 5/5
more" "$(cat "$M/d5/f5")" "appended data"
check "rm -r of a directory" rm -r "$M/d6"
check "snapshot" mkdir "$M/.snap/s1"
assert_eq "file 7/7" "$(cat "$M/.snap/s1/d7/f7")" "a snapshot of a recycled file reads"
assert_eq "$(cd "$B" && find . -mindepth 1 -path ./.mirrorfs -prune -o -printf '%p\n' | wc -l)" \
	"$(find "$M" -mindepth 1 | wc -l)" "the mount lists what the backing directory holds"

nfd=$(ls "/proc/$pid/fd" | wc -l)
assert_ge "$LIMIT" "$nfd" "still at most $LIMIT descriptors ($nfd)"
diag "daemon descriptors at the end: $nfd"

mfs_umount "$M"
check "mirrorfs check: no drift" "$MIRRORFS" check "$B"

done_testing
