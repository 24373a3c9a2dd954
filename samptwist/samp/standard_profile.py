"""
pyvo.samp's C{standard_profile} module holds the classes of its threaded
XML-RPC servers; samptwist's Standard Profile servers are Twisted resources,
so looking those names up here explains what to use instead.
"""

from ._internals import refuse

__all__: list = []

__getattr__ = refuse(__name__, {
    "ThreadingXMLRPCServer": (
        "the hub is samptwist.hub.standard.StandardProfile (run it with SAMPHubServer or "
        "'twistd samphub'); a client's callback server is made by SAMPClient.start()"
    ),
    "SAMPSimpleXMLRPCRequestHandler": (
        "to handle callbacks, subclass samptwist.samp.client.SAMPClient and override "
        "receive_notification/receive_call/receive_response"
    ),
})
