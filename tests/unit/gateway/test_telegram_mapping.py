"""Telethon's own message objects (as Telegram's updates and history give them) mapped to rows."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from telethon.tl import custom, types
from tgstack_gateway.events import DeleteEvent, MessageEvent
from tgstack_gateway.telegram import UnmappableMessage, message_row, update_events

DATE = dt.datetime(2026, 11, 27, 12, 30, 5, tzinfo=dt.UTC)
CHANNEL = types.PeerChannel(channel_id=1234567890)
CHANNEL_ID = -1001234567890
GROUP = types.PeerChat(chat_id=4242)
USER = types.PeerUser(user_id=777)


def message(**fields) -> types.Message:
    return types.Message(id=fields.pop("id", 10), peer_id=fields.pop("peer_id", CHANNEL), date=DATE,
                         message=fields.pop("message", "hello"), **fields)  # fmt: skip


def document(mime: str, *attributes, size: int = 2048) -> types.MessageMediaDocument:
    return types.MessageMediaDocument(document=types.Document(
        id=99, access_hash=1, file_reference=b"\x01\x02", date=DATE, mime_type=mime, size=size, dc_id=2,
        attributes=list(attributes)))  # fmt: skip


def test_a_channel_post_with_text():
    row = message_row(message(post=True), received_at=DATE + dt.timedelta(seconds=2))
    assert row["chat_id"] == CHANNEL_ID and row["message_id"] == 10
    assert row["created_at"] == "2026-11-27T12:30:05+00:00" and row["received_at"] == "2026-11-27T12:30:07+00:00"
    assert row["sender_id"] == CHANNEL_ID and row["text"] == "hello"
    assert "media_type" not in row and "edited_at" not in row
    json.dumps(row)  # the row goes to PostgreSQL as JSON: everything in it must serialise
    assert row["raw"]["id"] == 10 and row["raw"]["date"] == "2026-11-27T12:30:05+00:00"


def test_senders_in_groups_and_private_chats():
    assert message_row(message(peer_id=GROUP, from_id=USER))["sender_id"] == 777
    assert message_row(message(peer_id=GROUP, from_id=USER))["chat_id"] == -4242
    assert message_row(message(peer_id=USER))["sender_id"] == 777  # the other user wrote it
    assert message_row(message(peer_id=USER, out=True))["sender_id"] is None  # our own account


def test_a_reply_in_a_forum_topic():
    reply = types.MessageReplyHeader(reply_to_msg_id=7, reply_to_top_id=3, forum_topic=True)
    row = message_row(message(reply_to=reply))
    assert row["reply_to_message_id"] == 7 and row["thread_id"] == 3
    topic_start = types.MessageReplyHeader(reply_to_msg_id=3, forum_topic=True)
    assert message_row(message(reply_to=topic_start))["thread_id"] == 3
    plain = types.MessageReplyHeader(reply_to_msg_id=5)
    assert message_row(message(reply_to=plain))["thread_id"] is None


def test_a_forward_from_a_channel_and_from_a_hidden_user():
    forward = types.MessageFwdHeader(date=DATE - dt.timedelta(days=1), from_id=types.PeerChannel(555), channel_post=42)
    row = message_row(message(fwd_from=forward))
    assert row["forward_from_id"] == -1000000000555 and row["forward_message_id"] == 42
    assert row["forward_date"] == "2026-11-26T12:30:05+00:00"
    hidden = message_row(message(fwd_from=types.MessageFwdHeader(date=DATE, from_name="Somebody")))
    assert hidden["forward_from_id"] is None and hidden["forward_from_name"] == "Somebody"


def test_a_photo_takes_its_largest_size():
    photo = types.Photo(id=31, access_hash=1, file_reference=b"", date=DATE, dc_id=2, sizes=[
        types.PhotoSize(type="m", w=320, h=240, size=9000),
        types.PhotoSizeProgressive(type="y", w=1280, h=960, sizes=[1000, 50000, 120000]),
        types.PhotoStrippedSize(type="i", bytes=b"\x01"),
    ])  # fmt: skip
    row = message_row(message(message="", media=types.MessageMediaPhoto(photo=photo)))
    assert row["media_type"] == "photo" and row["media_file_id"] == "31"
    assert (row["media_width"], row["media_height"], row["media_size"]) == (1280, 960, 120000)
    assert row["text"] is None  # a photo without a caption


@pytest.mark.parametrize(
    ("media", "kind", "extra"),
    [
        (document("video/mp4", types.DocumentAttributeVideo(duration=12.5, w=640, h=360),
                  types.DocumentAttributeFilename(file_name="clip.mp4")),
         "video", {"media_duration": 12.5, "media_width": 640, "media_meta": {"file_name": "clip.mp4"}}),
        (document("video/mp4", types.DocumentAttributeVideo(duration=4, w=240, h=240, round_message=True)),
         "video_note", {"media_duration": 4.0}),
        (document("audio/ogg", types.DocumentAttributeAudio(duration=9, voice=True)), "voice", {"media_duration": 9.0}),
        (document("audio/mpeg", types.DocumentAttributeAudio(duration=200, title="Song", performer="Band")),
         "audio", {"media_meta": {"title": "Song", "performer": "Band"}}),
        (document("image/webp", types.DocumentAttributeImageSize(w=512, h=512),
                  types.DocumentAttributeSticker(alt=":)", stickerset=types.InputStickerSetEmpty())),
         "sticker", {"media_width": 512, "media_meta": {"alt": ":)"}}),
        (document("video/mp4", types.DocumentAttributeVideo(duration=2, w=100, h=100),
                  types.DocumentAttributeAnimated()), "animation", {}),
        (document("application/pdf", types.DocumentAttributeFilename(file_name="a.pdf")),
         "document", {"media_mime": "application/pdf", "media_size": 2048, "media_file_id": "99"}),
    ],
)  # fmt: skip
def test_documents_by_kind(media, kind, extra):
    row = message_row(message(message="caption", media=media))
    assert row["media_type"] == kind and row["text"] == "caption"
    for key, value in extra.items():
        assert row[key] == value, key
    json.dumps(row)


def test_media_without_a_file_keep_their_details():
    geo = types.MessageMediaGeo(geo=types.GeoPoint(long=13.4, lat=52.5, access_hash=0))
    row = message_row(message(message="", media=geo))
    assert row["media_type"] == "geo" and row["media_meta"]["geo"]["lat"] == 52.5
    contact = types.MessageMediaContact(phone_number="+100", first_name="A", last_name="B", vcard="", user_id=5)
    assert message_row(message(media=contact))["media_type"] == "contact"


def test_an_edit_keeps_its_edit_time_and_a_hidden_edit_does_not_count():
    edited = message_row(message(message="hello, edited", edit_date=DATE + dt.timedelta(minutes=5)))
    assert edited["edited_at"] == "2026-11-27T12:35:05+00:00" and edited["text"] == "hello, edited"
    reaction_only = message_row(message(edit_date=DATE + dt.timedelta(minutes=6), edit_hide=True))
    assert "edited_at" not in reaction_only


def test_service_messages_are_rows_with_their_action():
    service = types.MessageService(id=11, peer_id=GROUP, date=DATE, from_id=USER,
                                   action=types.MessageActionChatAddUser(users=[1, 2]))  # fmt: skip
    row = message_row(service)
    assert row["media_type"] == "service" and row["text"] is None and row["sender_id"] == 777
    assert row["media_meta"] == {"action": "ChatAddUser", "users": [1, 2]}
    title = types.MessageService(id=12, peer_id=CHANNEL, date=DATE, post=True,
                                 action=types.MessageActionChatEditTitle(title="New"))  # fmt: skip
    assert message_row(title)["media_meta"] == {"action": "ChatEditTitle", "title": "New"}


@pytest.mark.parametrize(
    "fields",
    [{"post": True}, {"peer_id": GROUP, "from_id": USER}, {"peer_id": USER}, {"peer_id": CHANNEL, "from_id": USER}],
)
def test_ids_agree_with_telethons_own_getters(fields):
    """Telethon hands out its patched Message (custom.Message's getters on the TL type): same ids as ours."""
    telethon_message = message(**fields)
    assert isinstance(telethon_message, custom.Message)
    row = message_row(telethon_message)
    assert row["chat_id"] == telethon_message.chat_id
    assert row["sender_id"] == telethon_message.sender_id


def test_what_is_not_a_message_is_refused_by_name():
    with pytest.raises(UnmappableMessage, match="MessageEmpty"):
        message_row(types.MessageEmpty(id=1, peer_id=CHANNEL))


def test_raw_updates_become_events():
    new = update_events(types.UpdateNewChannelMessage(message=message(post=True), pts=1, pts_count=1))
    assert isinstance(new[0], MessageEvent) and new[0].key == (CHANNEL_ID, 10)
    edited = message(peer_id=GROUP, from_id=USER, message="fixed", edit_date=DATE + dt.timedelta(minutes=1))
    edit = update_events(types.UpdateEditMessage(message=edited, pts=2, pts_count=1))
    assert edit[0].row["edited_at"] == "2026-11-27T12:31:05+00:00" and edit[0].row["text"] == "fixed"
    gone = update_events(types.UpdateDeleteChannelMessages(channel_id=1234567890, messages=[3, 4], pts=3, pts_count=2),
                         received_at=DATE)  # fmt: skip
    assert gone == [DeleteEvent(CHANNEL_ID, (3, 4), "2026-11-27T12:30:05+00:00")]
    assert update_events(types.UpdateDeleteMessages(messages=[9], pts=4, pts_count=1)) == [DeleteEvent(None, (9,))]
    assert update_events(types.UpdateUserTyping(user_id=1, action=types.SendMessageTypingAction())) == []
