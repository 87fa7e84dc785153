#!/usr/bin/env python3
"""Drives `baton run` with no command (the shell) through a pseudo-terminal, as a person
would: waits for the prompt, asks the terminal's size and type, interrupts a sleep with ^C,
leaves with `exit 3`. Prints one `what: result` line per check for tests/run_options.rs.

usage: pty_drive.py PROGRAM ARGS...
"""
import os
import pty
import select
import struct
import sys
import termios
import time
import fcntl

ROWS, COLS = 33, 101


def main():
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(sys.argv[1], sys.argv[1:])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
    # The slave's settings as the shell around baton left them (the master reads them).
    before = termios.tcgetattr(fd)
    seen = bytearray()

    def wait_for(token, timeout=240):
        end = time.time() + timeout
        while time.time() < end:
            if token in seen:
                return True
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:
                return token in seen
            if not data:
                return token in seen
            seen.extend(data)
        return token in seen

    def send(text):
        os.write(fd, text.encode())

    print("prompt:", "yes" if wait_for(b"# ") else "no")
    send("stty size; echo TERM=$TERM\r")
    print("size:", "yes" if wait_for(b"%d %d" % (ROWS, COLS), 60) else "no")
    print("term:", "yes" if wait_for(b"TERM=xterm-256color", 30) else "no")
    del seen[:]
    send("sleep 600\r")
    time.sleep(2)
    send("\x03")
    # The shell reports a job killed by SIGINT as 130.
    send("echo after-sleep $?\r")
    print("interrupted:", "yes" if wait_for(b"after-sleep 130", 60) else "no")
    send("exit 3\r")
    wait_for(b"never", 30)
    _, status = os.waitpid(pid, 0)
    print("status:", os.waitstatus_to_exitcode(status))
    try:
        after = termios.tcgetattr(fd)
        print("terminal restored:", "yes" if after == before else "no: %r != %r" % (after, before))
    except termios.error as e:
        print("terminal restored: unknown (%s)" % e)
    sys.stdout.write("output: %r\n" % bytes(seen[-2000:]))


main()
