"""
A hostile (or broken) far side for ``samptwist remote --via``: MODE is
``missing`` (no agent: an error on stderr, exit 1), ``old`` (an
older protocol's greeting), ``garbage`` (the greeting,
then bytes that are not AMP), ``unlisted`` (asks for a file never sent) or
``flood`` (thousands of commands at once).  It then waits for its stdin to
close, as the real agent would.
"""

import sys

from twisted.protocols.amp import AmpBox

GREETING = b"SAMPTWIST-REMOTE 2\n"
mode = sys.argv[1]
out = sys.stdout.buffer


def box(command, ask, **values):
    fields = {"_command": command, "_ask": str(ask)}
    fields.update(values)
    data = AmpBox(**{k: (v if isinstance(v, bytes) else str(v).encode()) for k, v in
                     fields.items()}).serialize()
    return b"A" + len(data).to_bytes(4, "big") + data  # one AMP frame


def hello():
    return box("Hello", 1, version=2, side="remote", place="evil", file_port=9)


if mode == "old":  # an older samptwist on the far side
    out.write(b"SAMPTWIST-REMOTE 1\n")
    out.flush()
    sys.stdin.buffer.read()
    sys.exit(0)
if mode == "missing":
    sys.stderr.write("/usr/bin/python3: No module named samptwist\n")
    sys.exit(1)
out.write(b"Welcome to the cluster! (a login banner)\n" + GREETING)
if mode == "garbage":
    junk = b"\x00\x07_answer\x00\x0399999\x00\x00" + b"\xff" * 100
    out.write(hello() + b"A" + len(junk).to_bytes(4, "big") + junk)
elif mode == "unlisted":
    out.write(hello() + box("FileOpen", 2, token="../../etc/passwd"))
elif mode == "flood":
    out.write(hello() + b"".join(box("Ping", n) for n in range(2, 5000)))
try:
    out.flush()
    sys.stdin.buffer.read()
except OSError:
    pass  # cut off
