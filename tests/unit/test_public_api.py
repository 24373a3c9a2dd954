"""
The public names re-exported from the package root (a change here is an API
change: update README and the changelog).
"""

import samptwist
import samptwist.samp


def test_public_names():
    assert sorted(samptwist.__all__) == sorted([
        "BroadcastTimeout", "HubAlreadyRunning", "HubService", "HubUnreachable",
        "LockfileError", "Message", "NotConnected", "ResponseError", "RunningHub",
        "SAMPCallError", "SAMPClient", "SAMPError", "SAMPHubError", "SAMPValueError",
        "__version__", "error", "find_hub", "make_message", "ok", "start_hub", "warning",
    ])
    for name in samptwist.__all__:
        assert getattr(samptwist, name) is not None


def test_pyvo_compatible_names():
    for name in ("SAMPHubServer", "SAMPIntegratedClient", "SAMPHubError", "SAMPClientError",
                 "send_table_to", "send_image_to", "send_spectrum_to", "find_client_id",
                 "connection"):
        assert hasattr(samptwist.samp, name), name
