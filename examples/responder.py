"""
A responder answering the custom MType "x-samptwist.example.add" with the sum
of its params "a" and "b"; it runs until the hub shuts down (or Ctrl-C).

    python examples/responder.py
"""

from __future__ import annotations

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react

from samptwist.client import ResponseError, SAMPClient
from samptwist.types import decode_float, encode_float

MTYPE = "x-samptwist.example.add"


def add(message):
    try:
        total = decode_float(message.params["a"]) + decode_float(message.params["b"])
    except (KeyError, ValueError) as e:
        raise ResponseError(f"need numeric params a and b ({e})") from None
    return {"sum": encode_float(total)}


async def main(reactor):
    client = SAMPClient(reactor, name="samptwist-responder",
                        description=f"answers {MTYPE}")
    client.add_handler(MTYPE, add)
    await client.connect()
    print(f"responder ready as {client.self_id}", flush=True)
    reason = await client.disconnected.next_event()
    print(f"hub gone ({reason}); exiting", flush=True)


if __name__ == "__main__":
    react(lambda reactor: ensureDeferred(main(reactor)))
