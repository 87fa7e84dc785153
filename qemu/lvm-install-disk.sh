#!/bin/bash
# Runs in the VM of qemu/in-stack-vm: lays out vda as Debian's installer does for "Guided -
# use entire disk and set up LVM". The host has partitioned vda (vda1 /boot, already
# written; vda2 for LVM) and attached the root filesystem's image as vdb. Here, with the
# real lvm2: vda2 becomes the PV of VG "baton-bookworm-vg" (the installer names it after the
# host), with LV "root" holding vdb's filesystem and LV "swap_1" a swap area.
set -euo pipefail
trap 'echo "BATON-VM-FAILED at line $LINENO: $BASH_COMMAND"' ERR

# No udev here: lvm2 makes its own nodes and waits for nobody.
lvm_conf='activation { udev_sync = 0 udev_rules = 0 } devices { obtain_device_list_from_udev = 0 }'
lvm() { command lvm "$@" --config "$lvm_conf"; }
vg=baton-bookworm-vg

modprobe dm-mod
lvm pvcreate -q /dev/vda2
lvm vgcreate -q "$vg" /dev/vda2
root_mib=$(( ($(blockdev --getsize64 /dev/vdb) + (1 << 20) - 1) >> 20 ))
lvm lvcreate -q -n root -L "${root_mib}m" "$vg"
lvm lvcreate -q -n swap_1 -L 64m "$vg"
dd if=/dev/vdb of="/dev/$vg/root" bs=4M conv=fsync status=none
mkswap -q "/dev/$vg/swap_1"
lvm vgchange -q -an "$vg"
sync
echo BATON-VM-DONE
