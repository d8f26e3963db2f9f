"""Telethon's message objects as rows of tgstack.messages (the keys tgstack.upsert_messages takes).

Pure mapping, no network: it reads only the TL objects Telethon builds from Telegram's updates and
history (``telethon.tl.types.Message`` and ``MessageService``, and Telethon's own ``custom.Message``, a
subclass). Ids are Telethon's "marked" peer ids (``telethon.utils.get_peer_id``): users > 0, basic
groups < 0, channels and supergroups with the -100 prefix, as the schema expects.
"""

from __future__ import annotations

import base64
import datetime as dt
import typing as t

from telethon import utils
from telethon.tl import types

from tgstack_gateway.events import DeleteEvent, MessageEvent

# MessageMedia* types without a file, stored by kind with their details in media_meta
SIMPLE_MEDIA = {
    types.MessageMediaGeo: "geo",
    types.MessageMediaGeoLive: "geo_live",
    types.MessageMediaVenue: "venue",
    types.MessageMediaContact: "contact",
    types.MessageMediaPoll: "poll",
    types.MessageMediaWebPage: "webpage",
    types.MessageMediaDice: "dice",
    types.MessageMediaGame: "game",
    types.MessageMediaInvoice: "invoice",
    types.MessageMediaStory: "story",
    types.MessageMediaGiveaway: "giveaway",
    types.MessageMediaUnsupported: "unsupported",
}


class UnmappableMessage(ValueError):
    """A Telegram object that is not a storable message (for example MessageEmpty)."""


def jsonable(value: t.Any) -> t.Any:
    """A TL object's to_dict() as plain JSON: datetimes in ISO 8601, bytes in base64."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # Telethon's dates are UTC
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.isoformat()


def peer(value: t.Any) -> int | None:
    return utils.get_peer_id(value) if value is not None else None


def details(tl_object: t.Any, *drop: str) -> dict[str, t.Any]:
    """A TL object's fields as JSON, without its type tag and the fields in DROP."""
    fields = jsonable(tl_object.to_dict())
    return {key: value for key, value in fields.items() if key != "_" and key not in drop}


def photo_columns(photo: t.Any) -> dict[str, t.Any]:
    columns: dict[str, t.Any] = {"media_type": "photo", "media_mime": "image/jpeg"}
    if not isinstance(photo, types.Photo):  # PhotoEmpty: expired or removed
        return columns | {"media_meta": {"empty": True}}
    columns["media_file_id"] = str(photo.id)
    best: tuple[int, int, int] | None = None
    for size in photo.sizes:
        if isinstance(size, types.PhotoSize):
            candidate = (size.w * size.h, size.size, size.w)
        elif isinstance(size, types.PhotoSizeProgressive):
            candidate = (size.w * size.h, max(size.sizes, default=0), size.w)
        else:
            continue
        if best is None or candidate > best:
            best = candidate
            columns.update(media_width=size.w, media_height=size.h, media_size=candidate[1])
    return columns


def document_columns(media: types.MessageMediaDocument) -> dict[str, t.Any]:
    document = media.document
    if not isinstance(document, types.Document):
        return {"media_type": "document", "media_meta": {"empty": True}}
    columns: dict[str, t.Any] = {
        "media_type": "document",
        "media_file_id": str(document.id),
        "media_size": document.size,
        "media_mime": document.mime_type,
    }
    meta: dict[str, t.Any] = {}
    kinds = set()
    for attribute in document.attributes:
        if isinstance(attribute, types.DocumentAttributeVideo):
            kinds.add("video_note" if attribute.round_message else "video")
            columns.update(media_width=attribute.w, media_height=attribute.h, media_duration=float(attribute.duration))
        elif isinstance(attribute, types.DocumentAttributeAudio):
            kinds.add("voice" if attribute.voice else "audio")
            columns["media_duration"] = float(attribute.duration)
            tags = {"title": attribute.title, "performer": attribute.performer}
            meta.update({key: value for key, value in tags.items() if value})
        elif isinstance(attribute, types.DocumentAttributeSticker):
            kinds.add("sticker")
            meta["alt"] = attribute.alt
        elif isinstance(attribute, types.DocumentAttributeAnimated):
            kinds.add("animation")
        elif isinstance(attribute, types.DocumentAttributeImageSize):
            columns.update(media_width=attribute.w, media_height=attribute.h)
        elif isinstance(attribute, types.DocumentAttributeFilename):
            meta["file_name"] = attribute.file_name
    # the most specific kind wins: an animated GIF is also a video, a sticker may carry an image size
    for kind in ("sticker", "animation", "video_note", "voice", "video", "audio"):
        if kind in kinds:
            columns["media_type"] = kind
            break
    if meta:
        columns["media_meta"] = meta
    return columns


def media_columns(media: t.Any) -> dict[str, t.Any]:
    if media is None or isinstance(media, types.MessageMediaEmpty):
        return {}
    if isinstance(media, types.MessageMediaPhoto):
        return photo_columns(media.photo) if media.photo is not None else {"media_type": "photo"}
    if isinstance(media, types.MessageMediaDocument):
        return document_columns(media)
    kind = SIMPLE_MEDIA.get(type(media), type(media).__name__.removeprefix("MessageMedia").lower() or "unknown")
    return {"media_type": kind, "media_meta": details(media)}


def sender(message: t.Any, chat_id: int) -> int | None:
    if message.from_id is not None:
        return peer(message.from_id)
    if message.post:  # a channel's own post
        return chat_id
    if isinstance(message.peer_id, types.PeerUser) and not message.out:  # private chat: the other user
        return chat_id
    return None  # our own message in a private chat, or an anonymous group admin


def message_row(message: t.Any, *, received_at: dt.datetime | None = None, raw: bool = True) -> dict[str, t.Any]:
    """The row for MESSAGE (a Telethon Message or MessageService): the keys of tgstack.upsert_messages."""
    if not isinstance(message, types.Message | types.MessageService):
        raise UnmappableMessage(f"not a storable message: {type(message).__name__}")
    if message.date is None:
        raise UnmappableMessage(f"message {message.id} has no date (Telegram sends one for every stored message)")
    chat_id = peer(message.peer_id)
    row: dict[str, t.Any] = {
        "chat_id": chat_id,
        "message_id": message.id,
        "created_at": iso(message.date),
        "sender_id": sender(message, chat_id),
        "text": None,
    }
    reply = message.reply_to
    if isinstance(reply, types.MessageReplyHeader):
        row["reply_to_message_id"] = reply.reply_to_msg_id
        row["thread_id"] = reply.reply_to_top_id or (reply.reply_to_msg_id if reply.forum_topic else None)
    if isinstance(message, types.MessageService):
        row["media_type"] = "service"
        row["media_meta"] = {"action": type(message.action).__name__.removeprefix("MessageAction"),
                             **details(message.action)}  # fmt: skip
    else:
        row["text"] = message.message if message.message != "" or message.media is None else None
        forward = message.fwd_from
        if forward is not None:
            row.update(
                forward_from_id=peer(forward.from_id),
                forward_from_name=forward.from_name or forward.post_author,
                forward_message_id=forward.channel_post or forward.saved_from_msg_id,
                forward_date=iso(forward.date),
            )
        row.update(media_columns(message.media))
        if message.edit_date is not None and not message.edit_hide:
            row["edited_at"] = iso(message.edit_date)
    if received_at is not None:
        row["received_at"] = iso(received_at)
    if raw:
        row["raw"] = details(message)
    return row


def update_events(update: t.Any, *, received_at: dt.datetime | None = None) -> list[MessageEvent | DeleteEvent]:
    """The gateway's events for one of Telegram's raw updates (new, edited, deleted messages); others: none.

    The live part of the Telethon source hands every raw update here (``client.on(events.Raw)``), so
    deletions of private chats and basic groups, which Telegram sends without a chat, are kept too.
    """
    if isinstance(update, types.UpdateNewMessage | types.UpdateNewChannelMessage | types.UpdateEditMessage
                  | types.UpdateEditChannelMessage):  # fmt: skip
        if isinstance(update.message, types.MessageEmpty):
            return []
        return [MessageEvent(message_row(update.message, received_at=received_at))]
    if isinstance(update, types.UpdateDeleteChannelMessages):
        chat = utils.get_peer_id(types.PeerChannel(update.channel_id))
        return [DeleteEvent(chat, tuple(update.messages), iso(received_at))]
    if isinstance(update, types.UpdateDeleteMessages):
        return [DeleteEvent(None, tuple(update.messages), iso(received_at))]
    return []
