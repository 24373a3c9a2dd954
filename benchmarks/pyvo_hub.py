"""
Run pyvo.samp's hub (the successor of astropy.samp's) on loopback with a given
lockfile and no Web Profile, until SIGTERM:
C{python3 -m benchmarks.pyvo_hub LOCKFILE}.
"""

from __future__ import annotations

import signal
import sys
import threading


def main() -> None:
    import pyvo.samp
    from pyvo.samp import SAMPHubServer

    pyvo.samp.conf.use_internet = False
    hub = SAMPHubServer(lockfile=sys.argv[1], web_profile=False, addr="127.0.0.1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    hub.start(wait=False)
    try:
        stop.wait()
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
