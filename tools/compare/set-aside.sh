#!/usr/bin/env bash
# set-aside.sh WORKDIR PATH...: move outputs of tools/compare.sh out of the way, into WORKDIR/trash/, instead of
# deleting them; compare.sh deletes the trash once, at the end of its run. It is the `--prepare` step of the
# timed runs (then `sync`).
#
# Why not rm -rf: on ext4 without a journal (as on the machine these figures were first taken on), the inode
# allocator skips inodes freed in the last 1-5 minutes, scanning past every one of them for each new file, so
# creating files right after deleting a large tree was 5-40x slower than on a fresh area of the disk, and that
# would be timed instead of the tools.
#
# Whatever is mounted at or below a PATH (the overlay driver of containers-storage bind-mounts its home) is
# unmounted first, deepest first. Refuses any PATH not strictly inside WORKDIR, and any WORKDIR without
# compare.sh's marker file. A PATH that does not exist is fine.
set -euo pipefail

(($# >= 2)) || {
    echo "usage: set-aside.sh WORKDIR PATH..." >&2
    exit 2
}
work=$(realpath -m -- "$1")
shift
[[ -e $work/.strata-bench-workdir ]] || {
    echo "set-aside.sh: $work is not a compare.sh work dir" >&2
    exit 1
}
mkdir -p -- "$work/trash"
for p in "$@"; do
    p=$(realpath -m -- "$p")
    [[ $p == "$work"/?* && $p != "$work/trash" && $p != "$work/trash/"* ]] || {
        echo "set-aside.sh: refusing to move $p: not inside $work (or already in its trash)" >&2
        exit 1
    }
    awk -v d="$p" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -ru |
        while IFS= read -r mnt; do
            while umount -- "$mnt" 2>/dev/null; do :; done
        done
    if [[ -e $p || -L $p ]]; then
        mv -- "$p" "$(mktemp -d "$work/trash/XXXXXXXX")/"
    fi
done
