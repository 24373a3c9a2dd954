"""
Sending data products: an astropy Table (as a temporary VOTable referenced by
a C{file:} URL and deleted once the recipients answered), a FITS image or a
spectrum, to one client by name or to every subscriber, reporting who
accepted.  astropy is imported only when a table has to be written.

The pyvo-named functions (L{send_table_to}, L{send_image_to},
L{send_spectrum_to}, L{find_client_id}) take either a L{SAMPClient} (and
return a L{Deferred}) or a blocking
L{samptwist.client.blocking.SAMPIntegratedClient} (and block).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from twisted.internet.defer import Deferred, TimeoutError

from ..constants import IMAGE_LOAD_FITS as IMAGE_MTYPE
from ..constants import SPECTRUM_LOAD_SSA as SPECTRUM_MTYPE
from ..constants import STATUS_OK, STATUS_WARNING
from ..constants import TABLE_LOAD_VOTABLE as TABLE_MTYPE
from ..errors import SAMPCallError
from .connection import SAMPClient
from .errors import BroadcastTimeout
from .handlers import make_message
from .naming import pick_by_name


async def _find(client: SAMPClient, name: str) -> str:
    if client.tracker is not None:
        found = client.tracker.find(name)
        if found is not None:
            return found
    names = []
    for client_id in await client.get_registered_clients():
        metadata = await client.get_metadata(client_id)
        names.append((str(client_id), metadata.get("samp.name")))
    found = pick_by_name(names, name)
    if found is None:
        raise KeyError(name)
    return found


def find_client(client: SAMPClient, name: str) -> Deferred:
    """
    @return: a L{Deferred} firing with the id of the client whose
        C{samp.name} is C{name} (exactly, else ignoring case: see
        L{samptwist.client.naming}), or failing with C{KeyError}.
    """
    return Deferred.fromCoroutine(_find(client, name))


async def _send(
    client: SAMPClient,
    mtype: str,
    params: Dict[str, Any],
    recipient: Optional[str],
    timeout: float,
) -> Dict[str, Any]:
    message = make_message(mtype, params)
    if recipient is not None:
        if recipient not in (client.tracker.clients if client.tracker else {}):
            try:
                recipient = await _find(client, recipient)
            except KeyError:
                pass  # perhaps an id after all; the hub will say
        try:
            return {recipient: await client.call(recipient, message, timeout=timeout)}
        except SAMPCallError as e:
            return {recipient: e}
        except TimeoutError as e:
            return {recipient: e}
    try:
        results: Dict[str, Any] = dict(await client.call_all(message, timeout=timeout))
    except BroadcastTimeout as e:
        results = dict(e.responses)
        for missing in e.missing:
            results[missing] = TimeoutError(f"{missing} did not answer within {timeout:g}s")
    # The same outcome types as for a single recipient: refusals as errors.
    for responder, response in results.items():
        if isinstance(response, dict) and response.get("samp.status") not in (
            STATUS_OK,
            STATUS_WARNING,
        ):
            results[responder] = SAMPCallError(response, responder)
    return results


def send(
    client: SAMPClient,
    mtype: str,
    params: Dict[str, Any],
    recipient: Optional[str] = None,
    timeout: float = 10.0,
) -> Deferred:
    """
    Call C{recipient} (a client id or C{samp.name}), or every subscriber of
    C{mtype} if C{None}.

    @return: a L{Deferred} firing with recipient id to outcome: the
        response map (accepted; C{samp.status} says how), a
        L{SAMPCallError} (refused) or a L{TimeoutError} (no answer).
    """
    return Deferred.fromCoroutine(_send(client, mtype, params, recipient, timeout))


@contextlib.contextmanager
def votable_file(table: Any) -> Iterator[str]:
    """
    Write C{table} (an astropy Table or VOTableFile) to a temporary VOTable
    file for the duration of the block.

    @return: (as a context manager) its C{file:} URL.
    """
    handle, name = tempfile.mkstemp(prefix="samptwist-", suffix=".vot")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            if hasattr(table, "to_xml"):
                table.to_xml(f)
            else:
                table.write(f, format="votable")
        yield Path(name).as_uri()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


async def _send_table(
    client: SAMPClient, table: Any, recipient: Optional[str], name: str, timeout: float
) -> Dict[str, Any]:
    if isinstance(table, (str, Path)):
        url = table if "://" in str(table) else Path(table).absolute().as_uri()
        return await _send(client, TABLE_MTYPE, {"url": url, "name": name}, recipient, timeout)
    with votable_file(table) as url:
        return await _send(client, TABLE_MTYPE, {"url": url, "name": name}, recipient, timeout)


def send_table(
    client: SAMPClient,
    table: Any,
    recipient: Optional[str] = None,
    name: str = "data",
    timeout: float = 10.0,
) -> Deferred:
    """
    Send a table with C{table.load.votable}.  A Table is written to a
    temporary VOTable, deleted once every recipient answered (or timed out);
    a path or URL is sent as it is.

    @return: a L{Deferred} firing as for L{send}.
    """
    return Deferred.fromCoroutine(_send_table(client, table, recipient, name, timeout))


def _url(product: Union[str, Path]) -> str:
    text = str(product)
    return text if "://" in text else Path(text).absolute().as_uri()


def send_image(client: SAMPClient, url: Union[str, Path], recipient: Optional[str] = None,
               name: str = "data", timeout: float = 10.0) -> Deferred:
    """
    Send a FITS image (URL or path) with C{image.load.fits}.

    @return: a L{Deferred} firing as for L{send}.
    """
    return send(client, IMAGE_MTYPE, {"url": _url(url), "name": name}, recipient, timeout)


def send_spectrum(client: SAMPClient, url: Union[str, Path], recipient: Optional[str] = None,
                  name: str = "data", timeout: float = 10.0,
                  meta: Optional[Dict[str, Any]] = None) -> Deferred:
    """
    Send a spectrum (URL or path) with C{spectrum.load.ssa-generic}.

    @param meta: SSA-style metadata (keyed by utype or UCD), e.g.
        C{{"Access.Format": "application/fits"}}; sent as the MType's
        C{meta} parameter (empty if not given).
    @return: a L{Deferred} firing as for L{send}.
    """
    params = {"url": _url(url), "name": name, "meta": dict(meta or {})}
    return send(client, SPECTRUM_MTYPE, params, recipient, timeout)


def send_product(client: SAMPClient, url: Union[str, Path], mtype: str,
                 recipient: Optional[str] = None, name: str = "data",
                 timeout: float = 10.0) -> Deferred:
    """
    Send any data product (URL or path) with C{mtype} and params C{url} and
    C{name}.

    @return: a L{Deferred} firing as for L{send}.
    """
    return send(client, mtype, {"url": _url(url), "name": name}, recipient, timeout)


# pyvo-named versions, for SAMPClient (Deferred) or the blocking facade.


def _dispatch(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(conn, SAMPClient):
        return fn(conn, *args, **kwargs)
    from .blocking import SAMPIntegratedClient

    if isinstance(conn, SAMPIntegratedClient):
        return _BLOCKING[fn](conn, *args, **kwargs)
    raise TypeError(f"expected a SAMPClient or blocking SAMPIntegratedClient, not {conn!r:.60}")


# The same helpers for the blocking facade, made of its own blocking calls.


def _find_blocking(conn: Any, name: str) -> str:
    names = [(str(i), conn.get_metadata(i).get("samp.name"))
             for i in conn.get_registered_clients()]
    found = pick_by_name(names, name)
    if found is None:
        raise KeyError(name)
    return found


def _send_blocking(conn: Any, mtype: str, params: Dict[str, Any], recipient: Optional[str],
                   timeout: float) -> Dict[str, Any]:
    from ..errors import SAMPProxyTimeoutError

    message = make_message(mtype, params)
    if recipient is not None:
        try:
            targets = [_find_blocking(conn, recipient)]
        except KeyError:
            targets = [recipient]  # perhaps an id after all; the hub will say
    else:
        targets = list(conn.get_subscribed_clients(mtype))
    seconds = str(max(1, math.ceil(timeout)))
    results: Dict[str, Any] = {}
    for target in targets:
        try:
            response = conn.call_and_wait(target, message, seconds)
        except SAMPProxyTimeoutError:
            results[target] = TimeoutError(f"{target} did not answer within {seconds}s")
            continue
        if response.get("samp.status") in (STATUS_OK, STATUS_WARNING):
            results[target] = response
        else:
            results[target] = SAMPCallError(response, target)
    return results


def _send_table_blocking(conn: Any, table: Any, recipient: Optional[str], name: str,
                         timeout: float) -> Dict[str, Any]:
    if isinstance(table, (str, Path)):
        return _send_blocking(conn, TABLE_MTYPE, {"url": _url(table), "name": name}, recipient,
                              timeout)
    with votable_file(table) as url:
        return _send_blocking(conn, TABLE_MTYPE, {"url": url, "name": name}, recipient, timeout)


def _send_product_blocking(mtype: str) -> Any:
    def go(conn: Any, url: Union[str, Path], recipient: Optional[str] = None,
           name: str = "data", timeout: float = 10.0) -> Dict[str, Any]:
        params: Dict[str, Any] = {"url": _url(url), "name": name}
        if mtype == SPECTRUM_MTYPE:
            params["meta"] = {}
        return _send_blocking(conn, mtype, params, recipient, timeout)

    return go


def _send_any_blocking(conn: Any, url: Union[str, Path], mtype: str,
                       recipient: Optional[str] = None, name: str = "data",
                       timeout: float = 10.0) -> Dict[str, Any]:
    return _send_blocking(conn, mtype, {"url": _url(url), "name": name}, recipient, timeout)


_BLOCKING: Dict[Any, Any] = {
    find_client: _find_blocking,
    send_table: _send_table_blocking,
    send_image: _send_product_blocking(IMAGE_MTYPE),
    send_spectrum: _send_product_blocking(SPECTRUM_MTYPE),
    send_product: _send_any_blocking,
}


def find_client_id(conn: Any, name: str) -> Any:
    """
    The id of the client called C{name} (C{KeyError} if none).
    """
    return _dispatch(conn, find_client, name)


def send_table_to(conn: Any, table: Any, client_name: Optional[str] = None,
                  name: str = "data", timeout: float = 10.0) -> Any:
    """
    Send C{table} to the client named C{client_name}, or to every
    C{table.load.votable} subscriber; see L{send_table}.
    """
    return _dispatch(conn, send_table, table, client_name, name, timeout)


def send_image_to(conn: Any, url: Union[str, Path], client_name: Optional[str] = None,
                  name: str = "data", timeout: float = 10.0) -> Any:
    """
    Send a FITS image; see L{send_image}.
    """
    return _dispatch(conn, send_image, url, client_name, name, timeout)


def send_spectrum_to(conn: Any, url: Union[str, Path], client_name: Optional[str] = None,
                     name: str = "data", timeout: float = 10.0) -> Any:
    """
    Send a spectrum; see L{send_spectrum}.
    """
    return _dispatch(conn, send_spectrum, url, client_name, name, timeout)


@contextlib.contextmanager
def connection(client_name: str = "samptwist client",
               description: str = "A samptwist SAMP client",
               **kwargs: Any) -> Iterator[Any]:
    """
    A blocking connection for the block, disconnected afterwards (as
    pyvo.samp's C{connection}).

    @return: (as a context manager) a connected blocking
        C{SAMPIntegratedClient}.
    """
    from .blocking import SAMPIntegratedClient

    connect_args = {k: kwargs.pop(k) for k in ("hub", "hub_params") if k in kwargs}
    client = SAMPIntegratedClient(name=client_name, description=description, **kwargs)
    client.connect(**connect_args)
    try:
        yield client
    finally:
        client.disconnect()


def send_product_to(conn: Any, url: Union[str, Path], mtype: str,
                    client_name: Optional[str] = None, name: str = "data",
                    timeout: float = 10.0) -> Any:
    """
    Send a data product with any MType; see L{send_product}.
    """
    return _dispatch(conn, send_product, url, mtype, client_name, name, timeout)


#: pyvo's name for L{votable_file}.
accessible_table = votable_file
