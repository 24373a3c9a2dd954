"""
pyvo.samp's constants (C{pyvo.samp.constants}).
"""

from __future__ import annotations

import struct
import zlib
from typing import List

from ..client.handlers import ERROR, OK, WARNING
from ..mtype import SAFE_MTYPES as _SAFE

__all__ = [
    "SAFE_MTYPES",
    "SAMP_ICON",
    "SAMP_STATUS_ERROR",
    "SAMP_STATUS_OK",
    "SAMP_STATUS_WARNING",
]

#: the SAMP version implemented
__profile_version__ = "1.3"

#: C{samp.status} of a successful response
SAMP_STATUS_OK = OK
#: C{samp.status} of a response with a warning
SAMP_STATUS_WARNING = WARNING
#: C{samp.status} of a failed call
SAMP_STATUS_ERROR = ERROR

#: the MTypes a Web Profile client may send to any subscriber
SAFE_MTYPES: List[str] = list(_SAFE)


def _icon(size: int = 32) -> bytes:
    # A small PNG drawn here (a blue disc with a lighter ring), so that no
    # image file has to be shipped: samptwist's samp.icon.url image.
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = bytearray()
    middle = (size - 1) / 2
    for y in range(size):
        rows.append(0)
        for x in range(size):
            r = ((x - middle) ** 2 + (y - middle) ** 2) ** 0.5
            if r <= size * 0.3:
                rows += bytes((40, 90, 200, 255))
            elif r <= size * 0.45:
                rows += bytes((140, 180, 240, 255))
            else:
                rows += bytes((0, 0, 0, 0))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b""))


#: a PNG icon (bytes), as pyvo's
SAMP_ICON: bytes = _icon()
