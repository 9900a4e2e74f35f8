#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# test_ops: every operation through a real mount, checked for its result, its
# exact errno, and the journal record it leaves (`mirrorfs journal --json`).
# Where the answer depends on the backing filesystem (holes, fallocate modes,
# ACL inheritance), the same operation on a plain directory of the same
# filesystem ($R) is the reference.

. "$(dirname "$0")/lib.sh"
need_fuse
need_cmd jq getfattr setfattr getfacl setfacl dd cmp
need_tools FSOP
mfs_init

B=$T/backing M=$T/mnt R=$T/ref
mkdir "$B" "$M" "$R"
echo "preexisting" >"$B/adopted"
mfs_mount "$B" "$M"

# SEQ=the newest seq, taken before the operation under test
mark() { SEQ=$(jseq "$M"); }
ino() { st "$1" ino; }

section "mount basics"
assert_eq 1 "$(st "$M" ino)" "the root's st_ino is the journal's root inode (1)"
assert_eq "$(cat "$B/adopted")" "$(cat "$M/adopted")" "a file that existed before the first mount is visible"
a_ino=$(ino "$M/adopted")
# the first mount adopts the tree with one scan: a record for the file
# itself, or an adopt record of the directory holding it, covers it
assert_journal "the pre-existing file is covered by an adopt record" "$M" 0 \
	".op == \"adopt\" and (.ino == $a_ino or .path == \"/\" or .path == \"/adopted\")"

section "create, O_EXCL, O_TRUNC, O_APPEND"
mark
assert_errno open "$M/f1" creat,excl,wronly 0640 "OK"
assert_errno open "$M/f1" creat,excl,wronly 0640 EEXIST
assert_errno open "$M/nodir/x" creat,wronly ENOENT
assert_errno open "$M/f1/x" creat,wronly ENOTDIR
assert_errno open "$M" wronly EISDIR
assert_errno open "$M/f1" rdonly,directory ENOTDIR
assert_eq 0640 "$(st "$M/f1" mode)" "created file has the requested mode (umask 022 does not apply to 0640)"
assert_eq reg "$(st "$B/f1" type)" "created file exists in the backing dir"
f1=$(ino "$M/f1")
assert_journal "create /f1 with the file's st_ino" "$M" "$SEQ" ".op == \"create\" and .path == \"/f1\" and .ino == $f1"
assert_eq 1 "$(jcount "$M" "$SEQ" '.op == "create"')" "the failed O_EXCL create left no record"

fsop pwrite "$M/f1" 0 1000 >/dev/null
mark
assert_errno open "$M/f1" wronly,trunc "OK"
assert_eq 0 "$(st "$M/f1" size)" "O_TRUNC empties the file"
assert_journal "O_TRUNC of a non-empty file is a truncate to 0" "$M" "$SEQ" ".op == \"truncate\" and .ino == $f1 and .length == 0"

assert_eq "OK 3 size=3" "$(fsop write "$M/ap" creat,wronly abc)" "write 'abc' to a new file"
ap=$(ino "$M/ap")
fsop fsync "$M/ap" >/dev/null
mark
assert_eq "OK 3 size=6" "$(fsop write "$M/ap" wronly,append def)" "O_APPEND write lands at the end"
assert_eq "OK 6 abcdef" "$(fsop pread "$M/ap" 0 100)" "content after append"
fsop fsync "$M/ap" >/dev/null
assert_journal_eventually "append recorded as a write covering [3,6)" "$M" "$SEQ" \
	".op == \"write\" and .ino == $ap and .offset <= 3 and .offset + .length >= 6"

section "pwrite at offsets, sparse files, SEEK_DATA/SEEK_HOLE"
mark
assert_eq "OK 5 size=105" "$(fsop pwrite "$M/pw" 100 str:hello)" "pwrite at offset 100 of a new file"
assert_eq "OK 105 $(printf '\\x00%.0s' {1..100})hello" "$(fsop pread "$M/pw" 0 200)" "the first 100 bytes read as zeros"
pw=$(ino "$M/pw")
fsop fsync "$M/pw" >/dev/null
assert_journal_eventually "pwrite recorded as write offset 100 length 5" "$M" "$SEQ" \
	".op == \"write\" and .ino == $pw and .offset == 100 and .length == 5"
assert_ok pwrite "$M/pw" 1048583 70000
assert_ok verify "$M/pw" 1048583 70000
assert_ok verify "$B/pw" 1048583 70000
for d in "$M" "$R"; do
	fsop pwrite "$d/sparse" 1M 4096 >/dev/null
	fsop pwrite "$d/sparse" 3M 100 >/dev/null
	fsop pwrite "$d/sparse" 0 10 >/dev/null
done
for q in "data 0" "hole 0" "data 4096" "hole 1M" "data 1052672" "data 2M" "hole 3M" "data 3145828" "hole 3145828" "data 4M"; do
	# shellcheck disable=SC2086
	assert_eq "$(fsop seek "$R/sparse" $q)" "$(fsop seek "$M/sparse" $q)" "seek $q on a sparse file is the backing fs's answer"
done
assert_eq "$(holemap "$R/sparse")" "$(holemap "$M/sparse")" "data/hole map of a sparse file"
assert_eq "$(st "$B/sparse" blocks)" "$(st "$M/sparse" blocks)" "st_blocks of a sparse file is the backing file's"

section "truncate, ftruncate"
fsop pwrite "$M/tr" 0 5000 >/dev/null
tr=$(ino "$M/tr")
mark
assert_ok truncate "$M/tr" 100000
assert_eq 100000 "$(st "$M/tr" size)" "truncate up"
assert_journal "truncate up recorded with the new size" "$M" "$SEQ" ".op == \"truncate\" and .ino == $tr and .length == 100000"
assert_eq "$(holemap "$B/tr")" "$(holemap "$M/tr")" "truncate up leaves a hole"
mark
assert_ok ftruncate "$M/tr" 10
assert_eq 10 "$(st "$M/tr" size)" "ftruncate down"
assert_ok verify "$M/tr" 0 10
assert_journal "ftruncate recorded with the new size" "$M" "$SEQ" ".op == \"truncate\" and .ino == $tr and .length == 10"
assert_errno truncate "$M" 0 EISDIR
assert_errno truncate "$M/none" 0 ENOENT

section "fallocate: keep, punch, zero, collapse, insert (reference: the backing fs)"
for mode in 0 keep punch zero collapse insert; do
	rm -f "$R/fa"
	fsop pwrite "$R/fa" 0 65536 >/dev/null
	want=$(fsop fallocate "$R/fa" "$mode" 16384 8192)
	if [ "$want" = EOPNOTSUPP ]; then
		skip_check "fallocate $mode" "the backing filesystem does not support it"
		continue
	fi
	fsop unlink "$M/fa" >/dev/null
	fsop pwrite "$M/fa" 0 65536 >/dev/null
	fa=$(ino "$M/fa")
	fsop fsync "$M/fa" >/dev/null
	mark
	got=$(fsop fallocate "$M/fa" "$mode" 16384 8192)
	if [ "$got" = EOPNOTSUPP ] && { [ "$mode" = collapse ] || [ "$mode" = insert ]; }; then
		# fs/fuse/file.c fuse_file_fallocate() refuses every mode but
		# KEEP_SIZE|PUNCH_HOLE|ZERO_RANGE before asking the daemon.
		skip_check "fallocate $mode" "the kernel's FUSE client does not forward this mode"
		continue
	fi
	assert_eq "$want" "$got" "fallocate $mode 16384 8192: same result as on the backing fs"
	# ZERO_RANGE leaves unwritten extents, and whether SEEK_DATA reports
	# those as data depends on the page cache, not on the file system's
	# contract; for that mode only the content is compared.
	[ "$mode" = zero ] || assert_eq "$(holemap "$R/fa")" "$(holemap "$M/fa")" "fallocate $mode: data/hole map"
	check "fallocate $mode: same content as on the backing fs" cmp "$R/fa" "$M/fa"
	case $mode in
	punch) cond='.op == "punch" and .offset == 16384 and .length == 8192' ;;
	0 | keep) cond='.op == "fallocate" and .offset == 16384 and .length == 8192' ;;
	*) cond='(.op == "fallocate" or .op == "punch" or .op == "write" or .op == "truncate")' ;;
	esac
	assert_journal "fallocate $mode recorded" "$M" "$SEQ" ".ino == $fa and $cond"
done
assert_errno fallocate "$M/fa" punch 0 0 EINVAL

section "copy_file_range"
fsop pwrite "$M/cs" 0 100000 >/dev/null
fsop fsync "$M/cs" >/dev/null
mark
assert_eq "OK 50000" "$(fsop copy_range "$M/cs" "$M/cd" 1000 0 50000)" "copy_file_range 50000 bytes"
check "copied range has the source's bytes" cmp -i 1000:0 -n 50000 "$M/cs" "$M/cd"
assert_eq 50000 "$(st "$M/cd" size)" "destination size"
cd_ino=$(ino "$M/cd")
fsop fsync "$M/cd" >/dev/null
sleep 0.1
assert_eq "0 50000" "$(jcover "$M" "$SEQ" "$cd_ino" | cut -d' ' -f1,2)" "journal: the copied range [0,50000) is recorded as written"

section "mkdir, rmdir"
mark
assert_ok mkdir "$M/dir" 0750
assert_eq "dir 0750" "$(st "$M/dir" type) $(st "$M/dir" mode)" "mkdir mode"
dir=$(ino "$M/dir")
assert_journal "mkdir /dir" "$M" "$SEQ" ".op == \"mkdir\" and .path == \"/dir\" and .ino == $dir"
assert_errno mkdir "$M/dir" EEXIST
fsop open "$M/dir/x" creat,wronly >/dev/null
assert_errno rmdir "$M/dir" ENOTEMPTY
assert_errno rmdir "$M/f1" ENOTDIR
assert_errno unlink "$M/dir" EISDIR
fsop unlink "$M/dir/x" >/dev/null
mark
assert_ok rmdir "$M/dir"
assert_journal "rmdir /dir" "$M" "$SEQ" ".op == \"rmdir\" and .path == \"/dir\""
assert_errno lstat "$M/dir" ENOENT
assert_errno lstat "$B/dir" ENOENT

section "unlink, also of an open file"
mark
assert_ok unlink_open "$M/uo"
assert_journal "unlink /uo" "$M" "$SEQ" ".op == \"unlink\" and .path == \"/uo\""
assert_errno lstat "$B/uo" ENOENT
assert_errno unlink "$M/uo" ENOENT

section "rename: over existing, RENAME_NOREPLACE, RENAME_EXCHANGE, across directories"
fsop write "$M/ra" creat,wronly AAA >/dev/null
fsop write "$M/rb" creat,wronly BBB >/dev/null
ra=$(ino "$M/ra")
mark
assert_ok rename "$M/ra" "$M/rb"
assert_eq "AAA" "$(cat "$M/rb")" "rename over an existing file replaces it"
assert_eq "$ra" "$(ino "$M/rb")" "st_ino follows the renamed file"
assert_errno lstat "$M/ra" ENOENT
assert_journal "rename /ra -> /rb" "$M" "$SEQ" ".op == \"rename\" and .path == \"/ra\" and .new_path == \"/rb\" and .ino == $ra"
fsop write "$M/rc" creat,wronly CCC >/dev/null
rc=$(ino "$M/rc")
assert_errno rename "$M/rc" "$M/rb" noreplace EEXIST
assert_eq "CCC AAA" "$(cat "$M/rc") $(cat "$M/rb")" "a failed RENAME_NOREPLACE changes nothing"
mark
assert_ok rename "$M/rb" "$M/rc" exchange
assert_eq "CCC AAA" "$(cat "$M/rb") $(cat "$M/rc")" "RENAME_EXCHANGE swaps the files"
assert_eq "$rc $ra" "$(ino "$M/rb") $(ino "$M/rc")" "RENAME_EXCHANGE swaps the inode numbers"
assert_journal "exchange /rb <-> /rc" "$M" "$SEQ" ".op == \"exchange\" and ((.path == \"/rb\" and .new_path == \"/rc\") or (.path == \"/rc\" and .new_path == \"/rb\"))"
assert_errno rename "$M/rb" "$M/missing" exchange ENOENT
assert_ok rename "$M/rb" "$M/rd" noreplace
fsop mkdir "$M/d1" >/dev/null
fsop mkdir "$M/d2" >/dev/null
fsop mkdir "$M/d1/sub" >/dev/null
fsop write "$M/d1/sub/deep" creat,wronly deep >/dev/null
deep=$(ino "$M/d1/sub/deep")
mark
assert_ok rename "$M/d1/sub" "$M/d2/moved"
assert_journal "rename of a directory across directories" "$M" "$SEQ" ".op == \"rename\" and .path == \"/d1/sub\" and .new_path == \"/d2/moved\""
assert_eq "$deep deep" "$(ino "$M/d2/moved/deep") $(cat "$M/d2/moved/deep")" "a file keeps its ino and content when its directory moves"
mark
fsop pwrite "$M/d2/moved/deep" 0 str:DEEP >/dev/null
fsop fsync "$M/d2/moved/deep" >/dev/null
assert_journal_eventually "a later write names the new path" "$M" "$SEQ" ".ino == $deep and .path == \"/d2/moved/deep\""
assert_errno rename "$M/d2" "$M/d2/moved/inside" EINVAL
fsop mkdir "$M/d1/full" >/dev/null
fsop write "$M/d1/full/x" creat,wronly x >/dev/null
fsop mkdir "$M/d2/empty" >/dev/null
assert_errno rename "$M/d2/empty" "$M/d1/full" ENOTEMPTY
assert_errno rename "$M/d2/empty" "$M/rd" ENOTDIR
assert_errno rename "$M/rd" "$M/d2/empty" EISDIR

section "hard links"
fsop write "$M/l1" creat,wronly link >/dev/null
l1=$(ino "$M/l1")
mark
assert_ok link "$M/l1" "$M/d1/l2"
assert_eq "$l1 $l1" "$(ino "$M/l1") $(ino "$M/d1/l2")" "both links have the same st_ino"
assert_eq "2 2" "$(st "$M/l1" nlink) $(st "$M/d1/l2" nlink)" "nlink is 2"
assert_journal "link /l1 -> /d1/l2" "$M" "$SEQ" ".op == \"link\" and .ino == $l1 and (.new_path == \"/d1/l2\" or .path == \"/d1/l2\")"
assert_errno link "$M/l1" "$M/rd" EEXIST
assert_errno link "$M/d1" "$M/dlink" EPERM
fsop pwrite "$M/d1/l2" 0 str:LINK >/dev/null
assert_eq "LINK" "$(cat "$M/l1")" "a write through one link shows through the other"
assert_ok unlink "$M/l1"
assert_eq 1 "$(st "$M/d1/l2" nlink)" "nlink drops to 1 after unlinking the other link"

section "symlinks"
mark
assert_ok symlink "target/with/../stuff" "$M/sl"
assert_eq "OK target/with/../stuff" "$(fsop readlink "$M/sl")" "readlink returns the target byte for byte"
assert_eq lnk "$(st "$M/sl" type)" "lstat: a symlink"
sl=$(ino "$M/sl")
assert_journal "symlink /sl" "$M" "$SEQ" ".op == \"symlink\" and .path == \"/sl\" and .ino == $sl"
assert_errno symlink x "$M/sl" EEXIST
assert_errno readlink "$M/rd" EINVAL
assert_ok symlink rd "$M/sl2"
assert_eq "CCC" "$(cat "$M/sl2")" "opening through a symlink follows it"
assert_ok lchown "$M/sl2" 4321 4321
assert_eq "4321 0" "$(st "$M/sl2" uid) $(st "$M/rd" uid)" "lchown changes the symlink, not its target"
assert_ok utimens "$M/sl2" 1000000000.5 1000000000.25 nofollow
assert_eq "1000000000.250000000" "$(st "$M/sl2" mtime)" "utimensat(AT_SYMLINK_NOFOLLOW) sets the symlink's own mtime"

section "mknod: fifo, socket, char device"
mark
assert_ok mknod "$M/fifo" fifo
assert_eq fifo "$(st "$M/fifo" type)" "mknod fifo"
fifo=$(ino "$M/fifo")
assert_journal "mknod /fifo" "$M" "$SEQ" ".op == \"mknod\" and .path == \"/fifo\" and .ino == $fifo"
assert_ok mknod "$M/sock" sock
assert_eq sock "$(st "$M/sock" type)" "mknod socket"
assert_ok mknod "$M/chr" chr 1 3
assert_eq "chr 1:3" "$(st "$M/chr" type) $(st "$M/chr" rdev)" "mknod char device 1:3"
assert_eq "chr 1:3" "$(st "$B/chr" type) $(st "$B/chr" rdev)" "the device node exists in the backing dir"
assert_errno mknod "$M/fifo" fifo EEXIST

section "chmod, chown, utimensat"
mark
assert_ok chmod "$M/f1" 0604
assert_eq 0604 "$(st "$M/f1" mode)" "chmod"
assert_journal "chmod recorded as setattr" "$M" "$SEQ" ".op == \"setattr\" and .ino == $f1"
assert_ok chmod "$M/f1" 4755
assert_eq 4755 "$(st "$M/f1" mode)" "chmod with the setuid bit"
mark
assert_ok chown "$M/f1" 1234 5678
assert_eq "1234 5678" "$(st "$M/f1" uid) $(st "$M/f1" gid)" "chown"
assert_eq "1234 5678" "$(st "$B/f1" uid) $(st "$B/f1" gid)" "chown reaches the backing file"
assert_journal "chown recorded as setattr" "$M" "$SEQ" ".op == \"setattr\" and .ino == $f1"
assert_ok chown "$M/f1" -1 0
assert_eq "1234 0" "$(st "$M/f1" uid) $(st "$M/f1" gid)" "chown -1 leaves the uid"
mark
assert_ok utimens "$M/f1" 1000000000.123456789 1100000000.987654321
assert_eq "1000000000.123456789 1100000000.987654321" "$(st "$M/f1" atime) $(st "$M/f1" mtime)" "utimensat explicit times, to the nanosecond"
assert_eq "1100000000.987654321" "$(st "$B/f1" mtime)" "explicit mtime reaches the backing file"
assert_journal "utimensat recorded as setattr" "$M" "$SEQ" ".op == \"setattr\" and .ino == $f1"
assert_ok utimens "$M/f1" omit 1200000000.5
assert_eq "1000000000.123456789 1200000000.500000000" "$(st "$M/f1" atime) $(st "$M/f1" mtime)" "UTIME_OMIT leaves atime"
t0=$(date +%s)
assert_ok utimens "$M/f1" now now
t1=$(date +%s)
m=$(st "$M/f1" mtime)
m=${m%.*}
if [ "$m" -ge $((t0 - 1)) ] && [ "$m" -le $((t1 + 1)) ]; then ok "UTIME_NOW sets the current time"; else not_ok "UTIME_NOW sets the current time" "mtime $m not in [$t0, $t1]"; fi

section "extended attributes: user.*, ACLs"
mark
assert_ok setxattr "$M/f1" user.color blue
assert_eq "OK blue" "$(fsop getxattr "$M/f1" user.color)" "getxattr"
assert_eq "OK user.color" "$(fsop listxattr "$M/f1")" "listxattr"
assert_journal "setxattr user.color" "$M" "$SEQ" ".op == \"setxattr\" and .ino == $f1 and .xattr == \"user.color\""
assert_eq "OK blue" "$(fsop getxattr "$B/f1" user.color)" "the xattr is on the backing file"
assert_errno setxattr "$M/f1" user.color red create EEXIST
assert_errno setxattr "$M/f1" user.size 1 replace ENODATA
assert_errno getxattr "$M/f1" user.none ENODATA
assert_ok setxattr "$M/f1" user.bin hex:00ff10
assert_eq 'OK \x00\xff\x10' "$(fsop getxattr "$M/f1" user.bin)" "binary xattr value"
assert_ok setxattr "$M/f1" user.empty ""
assert_eq "OK " "$(fsop getxattr "$M/f1" user.empty)" "empty xattr value"
mark
assert_ok removexattr "$M/f1" user.color
assert_errno getxattr "$M/f1" user.color ENODATA
assert_journal "removexattr user.color" "$M" "$SEQ" ".op == \"removexattr\" and .ino == $f1 and .xattr == \"user.color\""
assert_errno removexattr "$M/f1" user.color ENODATA
assert_ok setxattr "$M/d1" user.dir yes
assert_errno setxattr "$M/sl" user.x 1 nofollow EPERM
fsop chown "$M/f1" 0 0 >/dev/null
mark
check "setfacl -m u:nobody:rw" setfacl -m u:65534:rw "$M/f1"
assert_match "user:65534:rw-" "$(getfacl -n "$M/f1" 2>/dev/null | tr '\n' ' ')" "getfacl shows the ACL entry"
assert_journal "setfacl recorded as setxattr system.posix_acl_access" "$M" "$SEQ" ".op == \"setxattr\" and .ino == $f1 and .xattr == \"system.posix_acl_access\""
mkdir "$R/acld" && setfacl -d -m u:65534:rwx "$R/acld" && : >"$R/acld/new"
fsop mkdir "$M/acld" >/dev/null
check "setfacl -d (default ACL) on a directory" setfacl -d -m u:65534:rwx "$M/acld"
: >"$M/acld/new"
assert_eq "$(getfacl -n "$R/acld/new" 2>/dev/null | grep -v '^# file')" "$(getfacl -n "$M/acld/new" 2>/dev/null | grep -v '^# file')" \
	"a new file inherits the default ACL as on the backing fs"

section "statfs, fsync, fdatasync, locks, mmap, O_DIRECT"
sm=$(fsop statfs "$M")
sb=$(fsop statfs "$B")
assert_eq "0x65735546" "$(kv type "$sm")" "statfs f_type is FUSE's"
assert_eq "$(kv blocks "$sb") $(kv bsize "$sb")" "$(kv blocks "$sm") $(kv bsize "$sm")" "statfs blocks and bsize are the backing fs's"
assert_eq 255 "$(kv namemax "$sm")" "statfs namemax"
assert_ok fsync "$M/rc"
assert_ok fdatasync "$M/rc"
assert_ok fsync "$M/d1"
assert_ok flock "$M/rc"
assert_ok lockf "$M/rc"
fsop pwrite "$M/mm" 0 20000 >/dev/null
mm=$(ino "$M/mm")
fsop fsync "$M/mm" >/dev/null
mark
assert_ok mmap_rw "$M/mm"
assert_ok mmap_rw "$M/mm" 8192
check "mmap writes reached the backing file" cmp "$M/mm" "$B/mm"
assert_journal_eventually "writes through mmap are journaled" "$M" "$SEQ" ".op == \"write\" and .ino == $mm"
assert_ok direct "$M/dio"
assert_ok direct "$M/dio" 65536
check "O_DIRECT data reached the backing file" cmp "$M/dio" "$B/dio"

section "timestamps: which operations update mtime/ctime (reference: the backing fs)"
# ts_case DESC SETUP OP PATH...: in a fresh tree on the mount and on the
# reference, run SETUP, set every timestamp to 1000.5, run OP, and report
# for each PATH whether its mtime (m) and its ctime (c) changed; both sides
# must agree. Commands run with the tree as the current directory.
ts_case() {
	local desc=$1 setup=$2 op=$3 side p res out
	shift 3
	local -a results=()
	for side in "$M/ts" "$R/ts"; do
		rm -rf "$side"
		mkdir -p "$side/d1" "$side/d2"
		(cd "$side" && eval "$setup") >/dev/null
		find "$side" -exec touch -h -d @1000.5 {} +
		declare -A before=()
		for p in "$@"; do before[$p]=$(st "$side/$p" ctime); done
		sleep 0.02 # ctime granularity may be a jiffy
		(cd "$side" && eval "$op") >/dev/null
		res=""
		for p in "$@"; do
			out=$(st "$side/$p" mtime)
			[ "$out" = 1000.500000000 ] && res+="$p:-" || res+="$p:m"
			if [[ ${before[$p]} != *.* ]]; then res+="? "
			elif [ "$(st "$side/$p" ctime)" = "${before[$p]}" ]; then res+="- "
			else res+="c "; fi
		done
		results+=("$res")
		unset before
	done
	assert_eq "${results[1]}" "${results[0]}" "timestamps: $desc (${results[1]% })"
}
ts_case "O_TRUNC of an empty file" 'fsop open e creat,wronly' 'fsop open e wronly,trunc' e .
ts_case "O_TRUNC of a non-empty file" 'fsop pwrite f 0 100' 'fsop open f wronly,trunc' f
ts_case "open for writing without O_TRUNC" 'fsop pwrite f 0 100' 'fsop open f wronly' f
ts_case "pwrite" 'fsop pwrite f 0 100' 'fsop pwrite f 10 5' f
ts_case "truncate to the same size" 'fsop pwrite f 0 100' 'fsop truncate f 100' f
ts_case "truncate up" 'fsop pwrite f 0 100' 'fsop truncate f 5000' f
ts_case "ftruncate down" 'fsop pwrite f 0 100' 'fsop ftruncate f 50' f
ts_case "fallocate keep-size past EOF" 'fsop pwrite f 0 100' 'fsop fallocate f keep 0 8192' f
ts_case "fallocate punch" 'fsop pwrite f 0 8192' 'fsop fallocate f punch 0 4096' f
ts_case "copy_file_range" 'fsop pwrite f 0 100; fsop pwrite g 0 100' 'fsop copy_range g f 0 0 50' f g
ts_case "mmap write" 'fsop pwrite f 0 8192' 'fsop mmap_rw f 8192' f
ts_case "read" 'fsop pwrite f 0 100' 'fsop pread f 0 10' f
ts_case "setxattr" 'fsop pwrite f 0 1' 'fsop setxattr f user.a 1' f
ts_case "removexattr" 'fsop pwrite f 0 1; fsop setxattr f user.a 1' 'fsop removexattr f user.a' f
ts_case "chmod" 'fsop pwrite f 0 1' 'fsop chmod f 0600' f
ts_case "chown to the same owner" 'fsop pwrite f 0 1' 'fsop chown f 0 0' f
ts_case "utimensat omit omit" 'fsop pwrite f 0 1' 'fsop utimens f omit omit' f
ts_case "create" '' 'fsop open d1/new creat,wronly' d1 .
ts_case "mkdir" '' 'fsop mkdir d1/sub' d1 .
ts_case "symlink" '' 'fsop symlink x d1/sl' d1
ts_case "mknod fifo" '' 'fsop mknod d1/p fifo' d1
ts_case "unlink" 'fsop pwrite d1/x 0 1' 'fsop unlink d1/x' d1
ts_case "rmdir" 'fsop mkdir d1/sub' 'fsop rmdir d1/sub' d1 .
ts_case "link into another directory" 'fsop pwrite d1/x 0 1' 'fsop link d1/x d2/y' d1 d2 d1/x
ts_case "rename within a directory" 'fsop pwrite d1/x 0 1' 'fsop rename d1/x d1/y' d1 d1/y
ts_case "rename across directories" 'fsop pwrite d1/x 0 1' 'fsop rename d1/x d2/x' d1 d2 d2/x
ts_case "rename of a directory across directories" 'fsop mkdir d1/s' 'fsop rename d1/s d2/s' d1 d2 d2/s
ts_case "rename over an existing file" 'fsop pwrite d1/x 0 1; fsop pwrite d2/y 0 1' 'fsop rename d1/x d2/y' d1 d2 d2/y
ts_case "RENAME_EXCHANGE" 'fsop pwrite d1/x 0 1; fsop pwrite d2/y 0 1' 'fsop rename d1/x d2/y exchange' d1 d2 d1/x d2/y
ts_case "readdir" 'fsop pwrite d1/x 0 1' 'fsop readdir d1' d1
rm -rf "$M/ts" "$R/ts"

section "name length"
n255=$(printf 'a%.0s' {1..255})
n256=$(printf 'b%.0s' {1..256})
assert_ok open "$M/$n255" creat,wronly
assert_ok lstat "$M/$n255"
assert_errno open "$M/$n256" creat,wronly ENAMETOOLONG
assert_errno mkdir "$M/$n256" ENAMETOOLONG
assert_errno lstat "$M/$n256" ENAMETOOLONG
assert_errno symlink x "$M/$n256" ENAMETOOLONG
assert_errno rename "$M/$n255" "$M/$n256" ENAMETOOLONG
assert_errno link "$M/$n255" "$M/$n256" ENAMETOOLONG
assert_errno mknod "$M/$n256" fifo ENAMETOOLONG

section "the state directory .mirrorfs is invisible and untouchable"
assert_errno lstat "$M/.mirrorfs" ENOENT
assert_errno lstat "$M/.mirrorfs/journal.db" ENOENT
assert_errno open "$M/.mirrorfs/journal.db" rdonly ENOENT
if ! out=$(ls -a "$M" 2>&1); then
	not_ok "ls -a does not list .mirrorfs" "ls -a failed: $out"
elif grep -qx '.mirrorfs' <<<"$out"; then
	not_ok "ls -a does not list .mirrorfs" "$out"
else
	ok "ls -a does not list .mirrorfs"
fi
case " $(fsop readdir "$M") " in
*" .mirrorfs "*) not_ok "readdir of the root does not return .mirrorfs" "$(fsop readdir "$M")" ;;
*) ok "readdir of the root does not return .mirrorfs" ;;
esac
for op in "mkdir $M/.mirrorfs" "open $M/.mirrorfs creat,wronly" "mknod $M/.mirrorfs fifo" "symlink x $M/.mirrorfs" \
	"link $M/rc $M/.mirrorfs" "rename $M/rc $M/.mirrorfs" "rename $M/d2 $M/.mirrorfs" "rmdir $M/.mirrorfs" \
	"unlink $M/.mirrorfs" "setxattr $M/.mirrorfs user.x 1" "chmod $M/.mirrorfs 0777"; do
	# shellcheck disable=SC2086
	out=$(fsop $op)
	# success would touch the state dir; these errnos would reveal it
	case $out in
	OK* | EEXIST | EISDIR | ENOTDIR | ENOTEMPTY) not_ok "fsop $op is refused without revealing .mirrorfs" "got: $out" ;;
	*) ok "fsop $op is refused ($out)" ;;
	esac
done
assert_eq "dir" "$(st "$B/.mirrorfs" type)" "the backing state dir is still there"
assert_eq "reg" "$(st "$B/.mirrorfs/journal.db" type)" "journal.db is still there"
assert_ok mkdir "$M/d1/.mirrorfs"
assert_ok rmdir "$M/d1/.mirrorfs"

section "the journal: JSON, odd names, --since, write coalescing"
# data writes are committed after they return (group commit): flush dirty
# pages and every pending record first, so that nothing older shows up late
sync -f "$M"
fsop fsync "$M" >/dev/null
q=$'q"uo\nte\\'
assert_ok open "$M/$q" creat,wronly
qi=$(ino "$M/$q")
assert_eq 1 "$(jnl "$M" | jq -c --arg p "/$q" --argjson i "$qi" 'select(.op == "create" and .path == $p and .ino == $i)' | wc -l)" \
	"a name with a quote, a newline and a backslash round-trips through the JSON"
bad=$'bad\xffbyte'
assert_ok open "$M/$bad" creat,wronly
bi=$(ino "$M/$bad")
rec=$(jnl "$M" | jq -c --argjson i "$bi" 'select(.op == "create" and .ino == $i)')
assert_eq "/bad"$'\xef\xbf\xbd'"byte" "$(jq -r .path <<<"$rec")" "a 0xff byte in a name is U+FFFD in path"
assert_eq "2f626164ff62797465" "$(jq -r '.path_hex // "missing" | ascii_downcase' <<<"$rec")" "path_hex holds the exact bytes"
assert_eq "missing" "$(jnl "$M" | jq -r --argjson i "$qi" 'select(.ino == $i) | .path_hex // "missing"' | sort -u)" \
	"no path_hex for a valid UTF-8 name"
fsop rename "$M/$bad" "$M/${bad}2" >/dev/null
rec=$(jnl "$M" | jq -c --argjson i "$bi" 'select(.op == "rename" and .ino == $i)')
assert_eq "2f626164ff6279746532" "$(jq -r '.new_path_hex // "missing" | ascii_downcase' <<<"$rec")" "new_path_hex of a rename to a non-UTF-8 name"
jnl_ok "$M" && {
	check "every line of the journal is valid JSON" jq -c . <<<"$J"
	assert_eq true "$(jq -s 'map(select(.op | startswith("snap_") | not) | has("seq") and has("time") and has("op") and has("ino") and has("path")) | all' <<<"$J")" \
		"every record has seq, time, op, ino and path"
	assert_eq "" "$(jq -r '.op' <<<"$J" | sort -u | grep -vxE 'create|mkdir|symlink|mknod|link|unlink|rmdir|rename|exchange|setattr|write|truncate|fallocate|punch|setxattr|removexattr|snap_create|snap_delete|adopt')" \
		"every op is one of the documented names"
	assert_eq true "$(jq -s 'map(.seq) as $s | $s == ($s | unique) and ($s | length) == length' <<<"$J")" "seq strictly increases"
	assert_eq true "$(jq -s 'map(select(.op == "write" or .op == "punch" or .op == "fallocate") | (.offset | type) == "number" and (.length | type) == "number") | all' <<<"$J")" \
		"write/punch/fallocate records have numeric offset and length"
	assert_eq true "$(jq -s 'map(select(.op == "rename" or .op == "exchange") | has("new_path")) | all' <<<"$J")" "rename/exchange records have new_path"
	assert_eq "$(jq -c . <<<"$J")" "$(jnl "$B" | jq -c .)" "journal BACKING shows the same as journal MOUNTPOINT"
}

mark
fsop mkdir "$M/since" >/dev/null
fsop open "$M/since/x" creat,wronly >/dev/null
out=$(jnl "$M" --since "$SEQ")
assert_eq "mkdir /since create /since/x" "$(jq -r '"\(.op) \(.path)"' <<<"$out" | tr '\n' ' ' | sed 's/ $//')" "--since SEQ shows exactly the later records"
assert_eq true "$(jq -s --argjson s "$SEQ" 'map(.seq > $s) | all' <<<"$out")" "--since: every seq is greater than SEQ"
first=$(jq -s '.[0].seq' <<<"$out")
assert_eq "create /since/x" "$(jnl "$M" --since "$first" | jq -r '"\(.op) \(.path)"' | tr '\n' ' ' | sed 's/ $//')" "--since is exclusive"
assert_eq "" "$(jnl "$M" --since 999999999)" "--since beyond the end prints nothing"
out=$("$MIRRORFS" journal "$M" 2>&1)
rc=$?
if [ "$rc" = 0 ] && [ -n "$out" ]; then ok "journal without --json prints the changes"; else not_ok "journal without --json prints the changes" "status $rc" "$out"; fi

mark
dd if=/dev/zero of="$M/big" bs=4k count=256 status=none
fsop fsync "$M/big" >/dev/null
big=$(ino "$M/big")
sleep 0.2
cov=$(jcover "$M" "$SEQ" "$big")
assert_eq "0 1048576" "$(cut -d' ' -f1,2 <<<"$cov")" "journal: sequential dd covers [0, 1 MiB)"
n=$(cut -d' ' -f3 <<<"$cov")
if [ "${n:-999}" -le 16 ] 2>/dev/null; then ok "journal: 256 sequential 4k writes coalesced into $n record(s)"; else not_ok "journal: 256 sequential 4k writes are coalesced" "$n write records"; fi

section "inode numbers: never reused, stable across rename and remount"
fsop open "$M/gone" creat,wronly >/dev/null
gone=$(ino "$M/gone")
fsop unlink "$M/gone" >/dev/null
fsop open "$M/new" creat,wronly >/dev/null
assert_ne "$gone" "$(ino "$M/new")" "a new file does not reuse a dead file's st_ino"
keep_f=$(ino "$M/rc") keep_d=$(ino "$M/d2/moved") keep_l=$(ino "$M/d1/l2") keep_s=$(ino "$M/sl")
fsop rename "$M/rc" "$M/d2/rc" >/dev/null
assert_eq "$keep_f" "$(ino "$M/d2/rc")" "st_ino stable across a rename into another directory"
for d in "$M" "$M/d2" "$M/d1"; do
	out=$(fsop readdir "$d" ino)
	bad=""
	for e in ${out#OK }; do
		n=$(printf '%b' "${e%=*}") i=${e##*=}
		{ [ "$n" = . ] || [ "$n" = .. ]; } && continue
		[ "$i" = "$(ino "$d/$n")" ] || bad+="$n: d_ino $i, st_ino $(ino "$d/$n"); "
	done
	if [[ $out == OK* ]] && [ -z "$bad" ]; then ok "readdir d_ino equals st_ino in $d"; else not_ok "readdir d_ino equals st_ino in $d" "$out" "$bad"; fi
done
seq_before=$(jseq "$M")
mfs_umount "$M"
check "mirrorfs check: no drift after everything above" "$MIRRORFS" check "$B"
check "mirrorfs journal BACKING works while unmounted" bash -c '"$0" journal "$1" --json | jq -c . >/dev/null' "$MIRRORFS" "$B"
mfs_mount "$B" "$M"
assert_eq "$keep_f $keep_d $keep_l $keep_s $a_ino" \
	"$(ino "$M/d2/rc") $(ino "$M/d2/moved") $(ino "$M/d1/l2") $(ino "$M/sl") $(ino "$M/adopted")" "st_ino stable across remount"
assert_eq "$seq_before" "$(jseq "$M")" "a remount of a clean journal adds no records"
mfs_umount "$M"

section "read-only mount"
mfs_mount "$B" "$M" -o ro
assert_match '(^|,)ro(,|$)' "$(awk -v m="$M" '$2 == m { print $4 }' /proc/mounts)" "the mount is ro in /proc/mounts"
seq_before=$(jseq "$M")
assert_eq "OK 3 AAA" "$(fsop pread "$M/d2/rc" 0 10)" "reading works"
assert_errno pwrite "$M/d2/rc" 0 str:x EROFS
assert_errno open "$M/d2/rc" wronly EROFS
assert_errno open "$M/newfile" creat,wronly EROFS
assert_errno mkdir "$M/newdir" EROFS
assert_errno unlink "$M/d2/rc" EROFS
assert_errno rmdir "$M/d2/empty" EROFS
assert_errno rename "$M/d2/rc" "$M/x" EROFS
assert_errno link "$M/d2/rc" "$M/x" EROFS
assert_errno symlink x "$M/x" EROFS
assert_errno mknod "$M/x" fifo EROFS
assert_errno truncate "$M/d2/rc" 0 EROFS
assert_errno chmod "$M/d2/rc" 0600 EROFS
assert_errno setxattr "$M/d2/rc" user.x 1 EROFS
assert_errno removexattr "$M/d1" user.dir EROFS
assert_errno utimens "$M/d2/rc" now now EROFS
assert_eq "$seq_before" "$(jseq "$M")" "nothing was journaled on the read-only mount"
mfs_umount "$M"

section "background mount and mirrorfs umount"
if out=$("$MIRRORFS" mount "$B" "$M" 2>&1); then
	ok "mirrorfs mount (daemonized) returns 0"
	if mfs_is_mounted "$M"; then ok "the daemonized mount is up when mount returns"; else not_ok "the daemonized mount is up when mount returns"; fi
	assert_eq "AAA" "$(cat "$M/d2/rc" 2>&1)" "the daemonized mount serves files"
	# the daemon forks after mounting: other processes reading the journal
	# meanwhile must neither lose its records nor kill it (sqlite locks do
	# not survive a fork)
	bad=""
	for i in $(seq 1 40); do
		out=$(fsop open "$M/bg$i" creat,wronly)
		[[ $out == OK* ]] || { bad+="create bg$i: $out; "; break; }
		bi=$(ino "$M/bg$i")
		fsop rename "$M/bg$i" "$M/bgr$i" >/dev/null
		[ "$(jcount "$M" 0 ".op == \"rename\" and .ino == $bi")" = 1 ] || bad+="rename of bg$i (ino $bi) not in the journal after an fsync of the mount; "
	done
	if [ -z "$bad" ] && mfs_is_mounted "$M"; then
		ok "daemonized mount: 40 renames each in the journal, with journal readers in between"
	else
		not_ok "daemonized mount: 40 renames each in the journal, with journal readers in between" "$bad" \
			"$(mfs_is_mounted "$M" && echo "still mounted" || echo "the mount is gone")" "$(fsop lstat "$M")"
	fi
	dpid=$(getfattr --absolute-names --only-values -n mirrorfs.mount.pid "$M" 2>&1)
	assert_eq "$(head -n 1 "$B/.mirrorfs/lock")" "$dpid" "the root's mirrorfs.mount.pid is the daemon holding the journal"
	check "mirrorfs umount" "$MIRRORFS" umount "$M"
	if is_mounted "$M"; then not_ok "mirrorfs umount unmounted it"; else ok "mirrorfs umount unmounted it"; fi
	if [[ $dpid =~ ^[0-9]+$ ]] && has_exited "$dpid"; then
		ok "mirrorfs umount returns once the daemon has exited"
	else
		not_ok "mirrorfs umount returns once the daemon has exited" "pid $dpid: $(cat "/proc/$dpid/stat" 2>&1)"
	fi
	# umount returns after the daemon closed the journal: the lock is free now
	check "mirrorfs check right after mirrorfs umount (journal closed)" "$MIRRORFS" check "$B"
else
	not_ok "mirrorfs mount (daemonized) returns 0" "$out"
fi

done_testing
