"""
What a web page may send, to whom, and what it may see: the Web Profile's
L{SendPolicy} (plugged into the hub core with C{Hub.set_policy("web",
...)}), the rewriting of hub events a page receives, and URL tracking of
what reaches it (WEB-SEC-5, ADM-SUBS-1, WEB-URL-3).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ..._log import Logger
from ...errors import SAMPHubError
from ..core import HUB_ID, METADATA, SUBSCRIPTIONS, Client, Hub
from ..policy import SendPolicy
from .restrict import MessageRestriction
from .sessions import WebClient, WebSessions
from .urls import UrlTracker


class WebPolicy(SendPolicy):
    """
    The hub's rules for web clients.

    @ivar restriction: which MTypes pages may send (L{MessageRestriction}).
    @ivar tracker: which URLs pages may have translated (L{UrlTracker}).
    """

    log = Logger()

    def __init__(
        self,
        hub: Hub,
        sessions: WebSessions,
        restriction: MessageRestriction,
        tracker: UrlTracker,
    ) -> None:
        self.hub = hub
        self.sessions = sessions
        self.restriction = restriction
        self.tracker = tracker

    # -- the core's hooks ----------------------------------------------------

    def may_send(self, sender: Client, mtype: str, annotation: Any) -> bool:
        return self.restriction.permits(mtype, annotation)

    def refusal(self, sender: Client, mtype: str, recipient: Optional[Client]) -> SAMPHubError:
        if recipient is None:
            self.log.warn(
                "web client {client_id} refused: may not broadcast {mtype}",
                client_id=sender.public_id,
                mtype=mtype,
            )
        else:
            self.log.warn(
                "web client {client_id} refused: may not send {mtype} to {recipient}",
                client_id=sender.public_id,
                mtype=mtype,
                recipient=recipient.public_id,
            )
        return SAMPHubError(
            f"web clients may not send {mtype} (not on the hub's list of MTypes safe for "
            "web pages, and the recipient does not mark it samp.mostly-harmless)",
            code=8,
        )

    def visible_subscriptions(
        self, viewer: Client, subscriptions: Dict[str, Any]
    ) -> Dict[str, Any]:
        """
        @return: only the entries C{viewer} may send to (WEB-SEC-5,
            ADM-SUBS-1).
        """
        return self.restriction.visible(subscriptions)

    def client_left(self, client: Client, reason: str) -> None:
        self.sessions.left(client, reason)

    # -- what reaches a page ---------------------------------------------------

    def rewrite(self, method: str, params: List[Any]) -> List[Any]:
        """
        C{samp.hub.event.subscriptions} tells a page only the subscriptions
        it may send to (ADM-SUBS-1 practice, as JSAMP does).

        @return: the callback's parameters, rewritten if need be.
        """
        if method != "receiveNotification" or params[0] != HUB_ID:
            return params
        message = params[1]
        if message.get("samp.mtype") != SUBSCRIPTIONS:
            return params
        event = message.get("samp.params") or {}
        subs = event.get("subscriptions")
        if not isinstance(subs, dict):
            return params
        shown = self.restriction.visible(subs)
        if shown is subs or len(shown) == len(subs):
            return params
        filtered = dict(message, **{"samp.params": dict(event, subscriptions=shown)})
        return [params[0], filtered]

    def incoming(self, state: WebClient, method: str, params: List[Any]) -> None:
        """
        URL tracking (WEB-URL-3) of a callback queued for C{state}: only
        content from trusted (non-web) clients permits URLs; hub events
        vouch only for non-web clients' data.
        """
        sender = self.hub.find(params[0])
        if sender is None or sender.profile == "web":
            return
        payload = params[-1]
        if sender.public_id == HUB_ID:
            mtype = payload.get("samp.mtype") if isinstance(payload, dict) else None
            if mtype != METADATA:
                return
            about = self.hub.find(payload.get("samp.params", {}).get("id"))
            if about is None or about.profile == "web":
                return
        self.tracker.incoming(payload, state.permitted)

    def outgoing(self, state: WebClient, payload: Any) -> None:
        """
        What C{state} sent (a message, a response, metadata) permits it no
        URL but those it already had (WEB-URL-3).
        """
        self.tracker.outgoing(payload, state.permitted)

    def received(self, state: WebClient, sender: Client, payload: Any) -> None:
        """
        C{state} is answered C{payload} (metadata, a callAndWait response)
        about or by C{sender}: it permits URLs if C{sender} is not a web
        client.
        """
        if sender.profile != "web" and state.client.registered:
            self.tracker.incoming(payload, state.permitted)
