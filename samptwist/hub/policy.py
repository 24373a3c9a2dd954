"""
What the clients of one profile may send, and to whom: the hooks the core
consults for every message such a client sends (L{SendPolicy}), and the
one it calls, synchronously, when such a client leaves.

The Standard Profile has no policy (its clients may send anything to
anyone); the Web Profile plugs in its MType restriction
(L{samptwist.hub.web.policy.WebPolicy}) with L{Hub.set_policy}.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ..errors import SAMPHubError
from .registry import Client


class SendPolicy:
    """
    The hooks the core calls for the clients of one profile; this base class
    permits everything and keeps nothing.
    """

    def may_send(self, sender: Client, mtype: str, annotation: Any) -> bool:
        """
        @param annotation: the recipient's subscription annotation for
            C{mtype}, or C{None} (not subscribed, or no recipient in view).
        @return: whether C{sender} may send C{mtype} to such a recipient.
        """
        return True

    def refusal(self, sender: Client, mtype: str, recipient: Optional[Client]) -> SAMPHubError:
        """
        @return: the fault for a message L{may_send} refused (to
            C{recipient}, or a broadcast if C{None}).
        """
        return SAMPHubError(f"{sender.profile} clients may not send {mtype}", code=8)

    def recipients(
        self, sender: Client, mtype: str, subscribed: List[Tuple[Client, Any]]
    ) -> List[Tuple[Client, Any]]:
        """
        For notifyAll and callAll: which of C{subscribed} (the callable
        subscribers of C{mtype} but the sender, with their annotations)
        C{sender} may send it to.  A broadcast that no subscriber may
        receive is refused, and so is one of a refused MType nobody is
        subscribed to.

        @return: the permitted recipients.
        @raise SAMPHubError: (L{refusal}) to refuse the whole broadcast.
        """
        allowed = [(c, note) for c, note in subscribed if self.may_send(sender, mtype, note)]
        if not allowed and (subscribed or not self.may_send(sender, mtype, None)):
            raise self.refusal(sender, mtype, None)
        return allowed

    def visible_subscriptions(
        self, viewer: Client, subscriptions: Dict[str, Any]
    ) -> Dict[str, Any]:
        """
        @return: what C{viewer} may learn of another client's
            C{subscriptions} (getSubscriptions).
        """
        return subscriptions

    def client_left(self, client: Client, reason: str) -> None:
        """
        C{client} of this profile has just been removed from the hub (in
        the same turn, before the hub's observers hear of it): drop what the
        profile keeps about it.
        """
