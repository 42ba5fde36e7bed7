"""What each client command does: checks, engine calls and the reply.

Every handler takes the hub, the connection and its typed command, raises
:class:`~hubbub.errors.CommandError` when the command fails, and returns the
``ack`` frame (sent only when the command carried an ``id``), a protocol v1
struct that the connection's codec encodes in its own wire format.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hubbub.auth import Credentials
from hubbub.core import protocol
from hubbub.core.channels import (
    NamespaceOptions,
    check_publish,
    check_subscribe,
    claims_allow,
    is_personal,
)
from hubbub.core.codec import Command, Connect, Refresh, SubRefresh, Subscribe
from hubbub.errors import AuthError, CloseCode, CommandError, ErrorCode, ErrorKind, TokenExpired

if TYPE_CHECKING:
    from hubbub.connection import Connection
    from hubbub.hub import Hub

Reply = protocol.ServerFrame | None


async def execute(hub: Hub, conn: Connection, command: Command) -> Reply:
    handler: Callable[[Hub, Connection, Any], Awaitable[Reply]] = _HANDLERS[type(command)]
    return await handler(hub, conn, command)


async def _authorize(hub: Hub, user: str, action: str, channel: str) -> None:
    if hub.authorizer is not None and not await hub.authorizer(user, action, channel):
        raise CommandError(ErrorCode.PERMISSION_DENIED, f"{action} on {channel!r} not allowed")


def _granted(hub: Hub, credentials: Credentials, channel: str, token: str | None) -> bool:
    if credentials.channels and claims_allow(credentials.channels, channel):
        return True
    if token is None:
        return False
    try:
        hub.verifier.subscription(token, channel=channel, user=credentials.user)
    except AuthError as exc:
        kind = ErrorKind.TOKEN_EXPIRED if isinstance(exc, TokenExpired) else None
        raise CommandError(
            ErrorCode.PERMISSION_DENIED, f"subscription token: {exc}", kind=kind
        ) from None
    return True


async def _readable(
    hub: Hub, conn: Connection, channel: str, action: str, token: str | None = None
) -> NamespaceOptions:
    """Options of ``channel`` if ``conn`` may subscribe to it (and so read it)."""
    options = hub.namespaces.resolve(channel)
    granted = _granted(hub, conn.credentials, channel, token)
    check_subscribe(channel, options, user=conn.user, granted=granted)
    await _authorize(hub, conn.user, action, channel)
    return options


async def _auth(hub: Hub, conn: Connection, cmd: protocol.Auth) -> Reply:
    try:
        credentials = hub.verifier.connection(cmd.token)
    except AuthError as exc:
        conn.abort(CloseCode.UNAUTHORIZED, str(exc))
        return None
    if hub.admit(credentials) is not None:
        conn.abort(CloseCode.FORBIDDEN, "connection limit per user reached")
        return None
    await hub.welcome(conn, credentials)
    return None  # the welcome frame is the reply


async def _connect(hub: Hub, conn: Connection, cmd: Connect) -> Reply:
    """Centrifugo's ``connect``: a token in the command wins over the handshake's
    credentials; an expired one is answered with an error (the SDKs fetch a new
    token and reconnect), any other failure closes 4001 (terminal for the SDKs)."""
    if cmd.token is not None:
        try:
            credentials = hub.verifier.connection(cmd.token)
        except TokenExpired as exc:
            raise CommandError(
                ErrorCode.BAD_REQUEST, str(exc), kind=ErrorKind.TOKEN_EXPIRED
            ) from None
        except AuthError as exc:
            conn.abort(CloseCode.UNAUTHORIZED, str(exc))
            return None
    elif conn.handshake is not None:
        credentials = conn.handshake
    elif hub.settings.allow_anonymous:
        credentials = Credentials(user="")
    else:
        conn.abort(CloseCode.UNAUTHORIZED, "token is missing")
        return None
    if hub.admit(credentials) is not None:
        conn.abort(CloseCode.FORBIDDEN, "connection limit per user reached")
        return None
    await hub.welcome(conn, credentials, reply_to=cmd.id, recover=cmd.subs)
    return None  # the welcome is the reply


async def _refresh(hub: Hub, conn: Connection, cmd: Refresh) -> Reply:
    """A fresh connection token for the same user. hubbub does not expire
    connections, so this only checks the token (an invalid one closes 4001)."""
    try:
        credentials = hub.verifier.connection(cmd.token)
    except AuthError as exc:
        conn.abort(CloseCode.UNAUTHORIZED, str(exc))
        return None
    if credentials.user != conn.user:
        conn.abort(CloseCode.UNAUTHORIZED, "refresh token is for another user")
        return None
    return None if cmd.id is None else protocol.Ack(id=cmd.id)


async def _sub_refresh(hub: Hub, conn: Connection, cmd: SubRefresh) -> Reply:
    """A fresh subscription token for a subscribed channel; checked, then accepted."""
    if cmd.channel not in conn.session.channels:
        raise CommandError(ErrorCode.BAD_REQUEST, f"not subscribed to {cmd.channel!r}")
    _granted(hub, conn.credentials, cmd.channel, cmd.token)
    return None if cmd.id is None else protocol.Ack(id=cmd.id)


async def _subscribe(hub: Hub, conn: Connection, cmd: protocol.Subscribe) -> Reply:
    channel = cmd.channel
    options = await _readable(hub, conn, channel, "subscribe", cmd.token)
    presence = options.presence and not is_personal(channel)
    # Centrifugo's reject-unrecovered flag: fail rather than answer recovered=false,
    # so presence is added only once the recovery is known to have worked.
    strict = isinstance(cmd, Subscribe) and cmd.reject_unrecovered and cmd.since is not None
    conn.session.begin_subscribe(channel)
    try:
        result, recovered = await hub.join(
            conn, channel, cmd.since, presence=presence and not strict
        )
    except BaseException:
        conn.session.end_subscribe(channel)
        raise
    if strict:
        try:
            if not recovered:
                raise CommandError(
                    ErrorCode.BAD_REQUEST,
                    "unrecoverable position",
                    kind=ErrorKind.UNRECOVERABLE_POSITION,
                )
            if presence:
                await hub.engine.add_presence(channel, conn.info, hub.settings.presence_ttl)
        except BaseException:
            conn.session.end_subscribe(channel)
            if hub.registry.remove(channel, conn.client_id):
                with contextlib.suppress(Exception):
                    await hub.node_unsubscribe(channel)
            raise
    if conn.closed:
        return None
    if cmd.id is not None:
        conn.send_text(
            conn.codec.encode_subscribed(
                cmd,
                protocol.SubscribeAck(
                    id=cmd.id,
                    offset=result.offset,
                    epoch=result.epoch,
                    recovered=recovered,
                    publications=result.publications if cmd.since is not None else None,
                ),
                recoverable=options.history_enabled,
            )
        )
    hub.go_live(conn, channel, result)
    if options.join_leave and not is_personal(channel):
        await hub.engine.publish_join(channel, conn.info)
    return None  # the ack was queued before going live, so it precedes new messages


async def _unsubscribe(hub: Hub, conn: Connection, cmd: protocol.Unsubscribe) -> Reply:
    hub.namespaces.resolve(cmd.channel)
    if cmd.channel in conn.session.channels:
        conn.session.end_subscribe(cmd.channel)
        hub.registry.remove(cmd.channel, conn.client_id)
        await hub.leave(conn, cmd.channel)
    return None if cmd.id is None else protocol.Ack(id=cmd.id)


async def _publish(hub: Hub, conn: Connection, cmd: protocol.Publish) -> Reply:
    options = hub.namespaces.resolve(cmd.channel)
    check_publish(cmd.channel, options, user=conn.user)
    await _authorize(hub, conn.user, "publish", cmd.channel)
    position = await hub.engine_publish(cmd.channel, cmd.data, info=conn.info)
    if cmd.id is None:
        return None
    return protocol.PositionAck(id=cmd.id, offset=position.offset, epoch=position.epoch)


async def _history(hub: Hub, conn: Connection, cmd: protocol.History) -> Reply:
    options = await _readable(hub, conn, cmd.channel, "history")
    if not options.history_enabled:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED,
            "history is off in this namespace",
            kind=ErrorKind.NOT_AVAILABLE,
        )
    since = cmd.since
    result = await hub.engine.history(
        cmd.channel,
        since=None if since is None else since.offset,
        limit=cmd.limit,
        reverse=cmd.reverse,
    )
    publications = result.publications
    if since is not None and since.epoch != result.epoch:
        publications = []  # another epoch: nothing after that position exists any more
    if cmd.id is None:
        return None
    return protocol.HistoryAck(
        id=cmd.id, publications=publications, offset=result.offset, epoch=result.epoch
    )


async def _presence_options(hub: Hub, conn: Connection, channel: str) -> None:
    options = await _readable(hub, conn, channel, "presence")
    if not options.presence:
        raise CommandError(
            ErrorCode.PERMISSION_DENIED,
            "presence is off in this namespace",
            kind=ErrorKind.NOT_AVAILABLE,
        )


async def _presence(hub: Hub, conn: Connection, cmd: protocol.Presence) -> Reply:
    await _presence_options(hub, conn, cmd.channel)
    clients = await hub.engine.presence(cmd.channel)
    return None if cmd.id is None else protocol.PresenceAck(id=cmd.id, clients=clients)


async def _presence_stats(hub: Hub, conn: Connection, cmd: protocol.PresenceStats) -> Reply:
    await _presence_options(hub, conn, cmd.channel)
    stats = await hub.engine.presence_stats(cmd.channel)
    if cmd.id is None:
        return None
    return protocol.PresenceStatsAck(
        id=cmd.id, num_clients=stats.num_clients, num_users=stats.num_users
    )


async def _rpc(hub: Hub, conn: Connection, cmd: protocol.Rpc) -> Reply:
    from hubbub.hub import RpcContext

    handler = hub.rpc_handlers.get(cmd.method)
    if handler is None:
        raise CommandError(
            ErrorCode.BAD_REQUEST,
            f"unknown rpc method {cmd.method!r}",
            kind=ErrorKind.METHOD_NOT_FOUND,
        )
    context = RpcContext(
        hub=hub, client=conn.client_id, user=conn.user, credentials=conn.credentials
    )
    result = await handler(context, protocol.parse_raw(cmd.data))
    if cmd.id is None:
        return None
    return protocol.RpcAck(id=cmd.id, data=protocol.raw_json(result))


_HANDLERS: dict[type, Callable[[Hub, Connection, Any], Awaitable[Reply]]] = {
    protocol.Auth: _auth,
    protocol.Subscribe: _subscribe,
    Subscribe: _subscribe,
    protocol.Unsubscribe: _unsubscribe,
    protocol.Publish: _publish,
    protocol.History: _history,
    protocol.Presence: _presence,
    protocol.PresenceStats: _presence_stats,
    protocol.Rpc: _rpc,
    Connect: _connect,
    Refresh: _refresh,
    SubRefresh: _sub_refresh,
}
