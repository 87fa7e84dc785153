#!/bin/bash
# Runs in the VM of qemu/in-stack-vm: lays out vda as Debian's installer does for "Guided -
# use entire disk and set up LVM". The host has partitioned vda (vda1 /boot, already
# written; vda2 for LVM) and attached the root filesystem's image as the last disk. Here,
# with the real lvm2: vda2 becomes the PV of VG "baton-bookworm-vg" (the installer names it
# after the host), with LV "root" holding the image's filesystem and LV "swap_1" a swap area.
# With three disks, the PV is instead a RAID1 array (metadata 1.2, /dev/md/0, array UUID
# ba7000ba:00000000:00000000:00000001, as the test's mdadm.conf names it) of vda2 and vdb2,
# the installer's "RAID1, then LVM on it", made with the real mdadm. With BATON_LAYOUT=luks
# in the environment (a test prepends it to this script), vda2 is first made a LUKS2 volume
# with cryptsetup's defaults (UUID 7a2c0b1e-5555-4000-8000-000000000001, passphrase
# baton-test-passphrase), opened as vda2_crypt, and the PV is inside it: the installer's
# "Guided - use entire disk and set up encrypted LVM".
set -euo pipefail
trap 'echo "BATON-VM-FAILED at line $LINENO: $BASH_COMMAND"' ERR

# No udev here: lvm2 makes its own nodes and waits for nobody.
lvm_conf='activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }'
lvm() { command lvm "$@" --config "$lvm_conf"; }
vg=baton-bookworm-vg

modprobe dm-mod
if [ -b /dev/vdc ]; then
    modprobe -a md-mod raid1
    mdadm --create /dev/md/0 --run --assume-clean --level=1 --raid-devices=2 --metadata=1.2 \
        --uuid=ba7000ba:00000000:00000000:00000001 --name=0 --homehost=baton-bookworm \
        /dev/vda2 /dev/vdb2 </dev/null
    pv=/dev/md/0 image=/dev/vdc
elif [ "${BATON_LAYOUT:-}" = luks ]; then
    modprobe -a dm-crypt af_alg algif_skcipher xts
    printf %s baton-test-passphrase | cryptsetup luksFormat --batch-mode --type luks2 \
        --uuid 7a2c0b1e-5555-4000-8000-000000000001 --key-file - /dev/vda2
    printf %s baton-test-passphrase | cryptsetup open --key-file - /dev/vda2 vda2_crypt
    pv=/dev/mapper/vda2_crypt image=/dev/vdb
else
    pv=/dev/vda2 image=/dev/vdb
fi
lvm pvcreate -q "$pv"
lvm vgcreate -q "$vg" "$pv"
root_mib=$(( ($(blockdev --getsize64 "$image") + (1 << 20) - 1) >> 20 ))
lvm lvcreate -q -n root -L "${root_mib}m" "$vg"
lvm lvcreate -q -n swap_1 -L 64m "$vg"
dd if="$image" of="/dev/$vg/root" bs=4M conv=fsync status=none
mkswap -q "/dev/$vg/swap_1"
lvm vgchange -q -an "$vg"
case "$pv" in
    /dev/md/*) mdadm --stop /dev/md/0 ;;
    /dev/mapper/*) cryptsetup close vda2_crypt ;;
esac
sync
echo BATON-VM-DONE
