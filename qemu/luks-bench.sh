#!/bin/bash
# Runs inside the VM scripts/bench luks boots with qemu/in-stack-vm (the stack tree, with
# cryptsetup): formats vda with cryptsetup's defaults (LUKS2, argon2id, its cost timed on
# this VM) and vdb with PBKDF2 (cryptsetup's default for it: sha256, timed too), then opens
# each ROUNDS times with `cryptsetup open` and with baton's `luks-open` (the init under that
# name, from the 9p share "bin"), alternating which goes first, and closes each with
# `cryptsetup close` (which finds baton's device as its own by its DM UUID). Whole commands
# from start to exit, passphrase on standard input. /out/times.txt: KDF ROUND CRYPTSETUP_MS
# BATON_MS, one line per open pair; /out/params.txt: the slots' parameters.
set -euo pipefail
trap 'echo "BATON-VM-FAILED at line $LINENO: $BASH_COMMAND"' ERR

mkdir -p /bench
mount -t 9p -o trans=virtio,version=9p2000.L,ro bin /bench
rounds=$(cat /bench/rounds)
modprobe -a dm-mod dm-crypt af_alg algif_skcipher xts
ln -sf /bench/baton-init /tmp/luks-open
pass=baton-bench-passphrase

printf %s "$pass" | cryptsetup luksFormat --batch-mode --type luks2 --key-file - /dev/vda
printf %s "$pass" | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --key-file - /dev/vdb
for dev in /dev/vda /dev/vdb; do
    cryptsetup luksDump "$dev" | grep -E '^\s+(PBKDF|Time cost|Memory|Threads|Iterations|Hash|Cipher):' |
        tr -s ' \t' ' ' | paste -sd ';' | sed "s|^|$dev:|" >>/out/params.txt
done

now() { date +%s%N; }
cryptsetup_open() { printf %s "$pass" | cryptsetup open --key-file - "$1" bench; }
baton_open() { printf %s "$pass" | /tmp/luks-open "$1" bench - 2>>/out/baton.txt; }
timed() { local t; t=$(now); "$@"; echo $(( ($(now) - t) / 1000000 )); cryptsetup close bench; }
for round in $(seq 1 "$rounds"); do
    for pair in argon2id:/dev/vda pbkdf2:/dev/vdb; do
        kdf=${pair%%:*} dev=${pair#*:}
        if [ $((round % 2)) = 1 ]; then
            c=$(timed cryptsetup_open "$dev"); b=$(timed baton_open "$dev")
        else
            b=$(timed baton_open "$dev"); c=$(timed cryptsetup_open "$dev")
        fi
        echo "$kdf $round $c $b" | tee -a /out/times.txt
    done
done
# What cryptsetup says of a device baton made.
baton_open /dev/vda
cryptsetup status bench >/out/status.txt
cryptsetup close bench
echo BATON-VM-DONE
