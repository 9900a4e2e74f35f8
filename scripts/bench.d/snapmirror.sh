# shellcheck shell=bash
# Sourced by scripts/bench: the snapshot and mirroring workloads. Each
# wl_NAME function runs one workload with the helpers scripts/bench defines.
later() { note "    not implemented yet: ${DESCRIPTION[$1]#(later) }"; }
wl_snap-create-1k()   { later snap-create-1k; }    # tree of 1k files, time mkdir .snap/s1 (O(1) claim)
wl_snap-create-100k() { later snap-create-100k; }  # same at 100k files: must not grow with the tree
wl_cow-overhead()     { later cow-overhead; }      # fio overwrite 1M/4K after a snapshot vs none: chunk copy cost
wl_snap-read()        { later snap-read; }         # cold read .snap/s/f (partly CoW) vs live f: ratio
wl_mirror-vs-rsync()  { later mirror-vs-rsync; }   # sshd on 127.0.0.1; snapshot delta sync vs rsync -a --delete
