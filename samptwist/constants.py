"""
SAMP names both sides of the protocol use: MTypes, response statuses, the
hub's client id and the default endpoints.

One definition each.  This module imports nothing (no hub, no client, no
Twisted), so the hub, the client library, the command line and the twistd
plugin all import their names from here.
"""

from __future__ import annotations

from typing import Tuple

# -- the hub -----------------------------------------------------------------

#: the public id of the hub's own client (checklist HUB-ID)
HUB_ID = "hub"

# -- MTypes the hub sends ------------------------------------------------------

SHUTDOWN = "samp.hub.event.shutdown"
REGISTER = "samp.hub.event.register"
UNREGISTER = "samp.hub.event.unregister"
METADATA = "samp.hub.event.metadata"
SUBSCRIPTIONS = "samp.hub.event.subscriptions"
DISCONNECT = "samp.hub.disconnect"
#: the four events that keep a client's view of the other clients current
CLIENT_EVENTS: Tuple[str, ...] = (REGISTER, UNREGISTER, METADATA, SUBSCRIPTIONS)

# -- application MTypes --------------------------------------------------------

PING = "samp.app.ping"
#: find clients by a metadata value (the hub answers it; SAMP 1.3 section 6.4)
QUERY_BY_META = "samp.query.by-meta"
#: the same, under the experimental name older clients send
QUERY_BY_META_X = "x-samp.query.by-meta"
TABLE_LOAD_VOTABLE = "table.load.votable"
TABLE_LOAD_FITS = "table.load.fits"
IMAGE_LOAD_FITS = "image.load.fits"
SPECTRUM_LOAD_SSA = "spectrum.load.ssa-generic"

# -- Standard Profile --------------------------------------------------------

#: the prefix of the Standard Profile's XML-RPC method names (C{samp.hub.register}, ...)
HUB_PREFIX = "samp.hub."

# -- response statuses ---------------------------------------------------------

STATUS_OK = "samp.ok"
STATUS_WARNING = "samp.warning"
STATUS_ERROR = "samp.error"

# -- default endpoints ---------------------------------------------------------

#: the Standard Profile's default: any free port on loopback
DEFAULT_LISTEN = "tcp:0:interface=127.0.0.1"
#: the Web Profile's well-known port (Web Profile 1.0, section 5.1)
WEB_PORT = 21012
#: the Web Profile's default: its well-known port, on loopback
DEFAULT_WEB_LISTEN = f"tcp:{WEB_PORT}:interface=127.0.0.1"
