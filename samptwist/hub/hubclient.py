"""
The hub's own client: answers C{samp.app.ping} and C{(x-)samp.query.by-meta}
(HUB-SELFCLI-3, ADM-QBM-1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from .._log import Logger
from ..constants import PING, QUERY_BY_META, QUERY_BY_META_X, STATUS_ERROR, STATUS_OK
from .callbacks import ICallbackTarget

if TYPE_CHECKING:
    from .core import Hub


@implementer(ICallbackTarget)
class HubClientTarget:
    """
    Delivers callbacks addressed to the hub client in-process.  Replies are
    sent on a later reactor turn, never re-entrantly.
    """

    log = Logger()

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def receiveNotification(self, senderId: str, message: Dict[str, Any]) -> Deferred:
        return succeed(None)

    def receiveCall(self, senderId: str, msgId: str, message: Dict[str, Any]) -> Deferred:
        response = self.answer(message)
        self.hub.reactor.callLater(0, self._reply, msgId, response)  # type: ignore[attr-defined]
        return succeed(None)

    def _reply(self, msg_id: str, response: Dict[str, Any]) -> None:
        try:
            self.hub.reply(self.hub.hub_client.private_key, msg_id, response)
        except Exception as e:  # the caller left, or the hub stopped
            self.log.debug("hub reply to {msg_id} dropped: {e}", msg_id=msg_id, e=e)

    def answer(self, message: Dict[str, Any]) -> Dict[str, Any]:
        """
        @return: the hub's response to C{message}.
        """
        mtype = message.get("samp.mtype")
        params = message.get("samp.params") or {}
        if mtype == PING:
            return {"samp.status": STATUS_OK, "samp.result": {}}
        if mtype in (QUERY_BY_META, QUERY_BY_META_X):
            key, value = params.get("key"), params.get("value")
            if not isinstance(key, str) or value is None:
                return {
                    "samp.status": STATUS_ERROR,
                    "samp.error": {"samp.errortxt": "query.by-meta needs params key and value"},
                }
            ids = [c.public_id for c in self.hub.clients if c.metadata.get(key) == value]
            return {"samp.status": STATUS_OK, "samp.result": {"ids": ids}}
        return {
            "samp.status": STATUS_ERROR,
            "samp.error": {"samp.errortxt": f"the hub does not handle {mtype}"},
        }

    def receiveResponse(self, responderId: str, msgTag: str, response: Dict[str, Any]) -> Deferred:
        return succeed(None)

    def discard_queued(self) -> None:
        pass

    def discard_call(self, msg_id: str) -> bool:
        return False

    def close(self) -> None:
        pass
