#!/bin/bash
# Runs inside the VM qemu/make-stack-disks boots with qemu/in-stack-vm (root: the tree of
# qemu/make-stack-tree, over 9p): makes the storage stacks on the empty virtio disks, with the real lvm2, mdadm and
# cryptsetup, each holding an ext4 filesystem with a known UUID and label. The disks, in the
# order qemu attaches them (vda, vdb, ...), and what goes on them:
#   lvm      an LVM2 PV of VG "vg0", LV "root" (linear)
#   md12-a/b RAID1 array "md12", metadata 1.2     md11-a/b RAID1, metadata 1.1
#   md10-a/b RAID1, metadata 1.0                  md090-a/b RAID1, metadata 0.90
#   luks2    LUKS2 with label "cryptroot"          luks1    LUKS1
#   stripe-a/b  VG "vgs" over both, LV "root" striped across them
#   r5-a/b/c    RAID5 array "r5" (1.2)             r0-a/b  RAID0 array "r0" (1.2)
#   mdlvm-a/b   RAID1 array "mdlvm" holding the PV of VG "vgmd", LV "root"
#   luksmore    GPT, one LUKS2 volume on each partition (see below)
# vg0 also has LV "swap", made with mkswap, for resume=. Every ext4 filesystem holds the
# marker root of qemu/root-tree (shared as 9p tag "marker"), so that each can boot to its
# init. /out/dm.txt gets the device-mapper devices lvm2 made: NAME UUID TABLE, one a line.
# Ends with BATON-VM-DONE on the console, or BATON-VM-FAILED and the command that failed. No udev runs here: lvm2 is told not to wait for it, mdadm and
# device-mapper make their own nodes.
set -euo pipefail
trap 'echo "BATON-VM-FAILED at line $LINENO: $BASH_COMMAND"' ERR

# Identifiers are fixed, so that tests can name them and a remade set is the same set.
passphrase=baton-test-passphrase
lvm_conf='activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }'
lvm() { command lvm "$@" --config "$lvm_conf"; }

mkdir -p /mnt /marker-root
mount -t 9p -o trans=virtio,version=9p2000.L,ro marker /marker-root
mkfs() {
    mkfs.ext4 -q -F -U "$2" -L "$3" "$1"
    mount "$1" /mnt
    cp -a /marker-root/. /mnt/
    umount /mnt
}

# The Nth disk qemu attached (1: vda).
disk() { local letters=abcdefghijklmnopqrstuvwxyz; echo "/dev/vd${letters:$1-1:1}"; }

# The tree carries the booted kernel's modules: the drivers come from its own modprobe.
modprobe -a dm-mod dm-crypt raid0 raid1 raid456 md-mod af_alg algif_skcipher algif_hash xts ext4

# vda: LVM.
lvm pvcreate -q --uuid 1VGmLL-bt0n-pv01-aaaa-bbbb-cccc-dddd01 --norestorefile "$(disk 1)"
lvm vgcreate -q vg0 "$(disk 1)"
lvm lvcreate -q -n root -L 16M vg0
mkfs /dev/vg0/root 5e1f0c2a-0000-4000-8000-00000000a001 lvroot
lvm lvcreate -q -n swap -L 8M vg0
mkswap -q -U 5e1f0c2a-0000-4000-8000-00000000a002 /dev/vg0/swap
# What lvm2 made of it, for tests to compare baton's activation with: each device's name,
# UUID and table.
record_dm() {
    for name in $(dmsetup ls | cut -f1); do
        echo "$name $(dmsetup info -c --noheadings -o uuid "$name") $(dmsetup table "$name")"
    done >>/out/dm.txt
}
: >/out/dm.txt
record_dm
lvm vgchange -q -an vg0

# vdb..vdi: RAID1 arrays, one per metadata version.
n=2
for version in 1.2 1.1 1.0 0.90; do
    name=md${version//./}
    a=$(disk $n) b=$(disk $((n + 1)))
    uuid=$(printf '%08x:ba700000:00000000:%08x' "$n" "$n")
    args=(--create "/dev/md/$name" --run --assume-clean --level=1 --raid-devices=2
          --metadata="$version" --uuid="$uuid")
    # 0.90 has no name; the others carry it as HOST:NAME.
    [ "$version" = 0.90 ] || args+=(--name="$name" --homehost=baton)
    mdadm "${args[@]}" "$a" "$b" </dev/null
    mkfs "/dev/md/$name" "$(printf '5e1f0c2a-0000-4000-8000-%012x' $((0xb00 + n)))" "$name"
    mdadm --stop "/dev/md/$name"
    n=$((n + 2))
done

# vdj, vdk: LUKS2 and LUKS1, each with ext4 inside. Key derivation made cheap: these are
# test disks, and an emulated CPU is slow.
luks() {
    local dev=$1 type=$2 uuid=$3 label=$4 fs_uuid=$5
    local args=(--batch-mode --type "$type" --uuid "$uuid" --key-file -)
    if [ "$type" = luks2 ]; then
        args+=(--label "$label" --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4)
    else
        args+=(--pbkdf-force-iterations 1000)
    fi
    printf %s "$passphrase" | cryptsetup luksFormat "${args[@]}" "$dev"
    printf %s "$passphrase" | cryptsetup open --key-file - "$dev" "test-$type"
    mkfs "/dev/mapper/test-$type" "$fs_uuid" "$label"
    cryptsetup close "test-$type"
}
luks "$(disk 10)" luks2 7a2c0b1e-2222-4000-8000-000000000002 cryptroot 5e1f0c2a-0000-4000-8000-00000000c002
luks "$(disk 11)" luks1 7a2c0b1e-1111-4000-8000-000000000001 cryptold 5e1f0c2a-0000-4000-8000-00000000c001

# vdl, vdm: a VG over two PVs, its root LV striped across both (64 KiB stripes).
lvm pvcreate -q --uuid 1VGmLL-bt0n-pv02-aaaa-bbbb-cccc-dddd02 --norestorefile "$(disk 12)"
lvm pvcreate -q --uuid 1VGmLL-bt0n-pv03-aaaa-bbbb-cccc-dddd03 --norestorefile "$(disk 13)"
lvm vgcreate -q vgs "$(disk 12)" "$(disk 13)"
lvm lvcreate -q -n root -i 2 -I 64k -L 16M vgs
mkfs /dev/vgs/root 5e1f0c2a-0000-4000-8000-00000000a003 striped
record_dm
lvm vgchange -q -an vgs

# An array of level $1 named $2 over the disks after it, with the ext4 UUID $3 on it (or
# nothing, when $3 is empty).
array() {
    local level=$1 name=$2 fs_uuid=$3 n=$4
    shift 4
    mdadm --create "/dev/md/$name" --run --assume-clean --level="$level" \
        --raid-devices=$# --metadata=1.2 --name="$name" --homehost=baton \
        --uuid="$(printf '%08x:ba700000:00000000:%08x' "$n" "$n")" "$@" </dev/null
    [ -z "$fs_uuid" ] || mkfs "/dev/md/$name" "$fs_uuid" "$name"
}

# vdn..vdp: RAID5 of three; vdq, vdr: RAID0 of two.
array 5 r5 5e1f0c2a-0000-4000-8000-000000000b14 20 "$(disk 14)" "$(disk 15)" "$(disk 16)"
mdadm --stop /dev/md/r5
array 0 r0 5e1f0c2a-0000-4000-8000-000000000b17 23 "$(disk 17)" "$(disk 18)"
mdadm --stop /dev/md/r0

# vds, vdt: LVM on RAID1: the array is the PV of VG vgmd.
array 1 mdlvm "" 25 "$(disk 19)" "$(disk 20)"
lvm pvcreate -q --uuid 1VGmLL-bt0n-pv04-aaaa-bbbb-cccc-dddd04 --norestorefile /dev/md/mdlvm
lvm vgcreate -q vgmd /dev/md/mdlvm
lvm lvcreate -q -n root -L 12M vgmd
mkfs /dev/vgmd/root 5e1f0c2a-0000-4000-8000-00000000a004 mdlvm
record_dm
lvm vgchange -q -an vgmd
mdadm --stop /dev/md/mdlvm

# vdu: more LUKS2 volumes, one per GPT partition, each with ext4 (and the marker root)
# inside, cheap to unlock unless said otherwise:
#   1 "keyed"    pbkdf2-sha256, the passphrase in slot 0 and the key file below in slot 1
#   2 "sect4k"   argon2i, 4096-byte encryption sectors
#   3 "damaged"  pbkdf2, its primary header then damaged (the secondary is intact)
#   4 "shared"   argon2id, the same passphrase as the luks2 disk
#   5 "cryptlvm" pbkdf2, an LVM2 PV inside (VG "vgcrypt", LV "root"): Debian's layout
#   6 "defaults" cryptsetup's defaults: argon2id timed on this VM (about 2 s), whatever
#                memory and lanes it picks
# The key file is 64 bytes, the same every time: printf of the text below, then padding.
key_file=/tmp/baton-test.key
printf '%-64s' 'baton-test-key-file' >"$key_file"
more=$(disk 21)
printf 'label: gpt\n size=24M\n size=24M\n size=24M\n size=24M\n size=40M\n size=24M\n' |
    sfdisk -q "$more"
part() { echo "$more$1"; }
cheap=(--pbkdf pbkdf2 --hash sha256 --pbkdf-force-iterations 1000)
more_luks() {
    local n=$1 label=$2
    shift 2
    printf %s "$passphrase" | cryptsetup luksFormat --batch-mode --type luks2 --key-file - \
        --uuid "$(printf '7a2c0b1e-3333-4000-8000-%012d' "$n")" --label "$label" "$@" "$(part "$n")"
    printf %s "$passphrase" | cryptsetup open --key-file - "$(part "$n")" "test-$label"
}
more_fs() {
    mkfs "/dev/mapper/test-$2" "$(printf '5e1f0c2a-0000-4000-8000-00000000d%03d' "$1")" "$2"
    cryptsetup close "test-$2"
}
more_luks 1 keyed "${cheap[@]}"
printf %s "$passphrase" | cryptsetup luksAddKey --batch-mode --key-file - "${cheap[@]}" \
    "$(part 1)" "$key_file"
more_fs 1 keyed
more_luks 2 sect4k --sector-size 4096 --pbkdf argon2i --pbkdf-memory 16384 --pbkdf-force-iterations 4
more_fs 2 sect4k
more_luks 3 damaged "${cheap[@]}"
more_fs 3 damaged
# Bytes of the primary header's JSON area: its checksum no longer matches.
printf 'DAMAGE' | dd of="$(part 3)" bs=1 seek=$((4096 + 512)) conv=notrunc status=none
more_luks 4 shared --pbkdf argon2id --pbkdf-memory 32768 --pbkdf-force-iterations 4
more_fs 4 shared
more_luks 5 cryptlvm "${cheap[@]}"
lvm pvcreate -q --uuid 1VGmLL-bt0n-pv05-aaaa-bbbb-cccc-dddd05 --norestorefile /dev/mapper/test-cryptlvm
lvm vgcreate -q vgcrypt /dev/mapper/test-cryptlvm
lvm lvcreate -q -n root -L 12M vgcrypt
mkfs /dev/vgcrypt/root 5e1f0c2a-0000-4000-8000-00000000d005 cryptlvm
lvm vgchange -q -an vgcrypt
cryptsetup close test-cryptlvm
more_luks 6 defaults
more_fs 6 defaults
cryptsetup luksDump "$(part 6)" >/out/defaults-dump.txt
cryptsetup luksDump "$(part 1)" >/out/keyed-dump.txt

sync
echo BATON-VM-DONE
