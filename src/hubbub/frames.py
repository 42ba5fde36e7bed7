"""Outbound frames: encoded once, framed once, shared by every recipient."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubbub.core.codec import Codec, Push


def frame_text(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((0x81, length))
    elif length < 65536:
        header = bytes((0x81, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + length.to_bytes(8, "big")
    return header + payload


class Frame:
    """One server frame's JSON. A publication becomes one :class:`Frame` that every
    subscriber's connection takes as it needs it: the text for an ASGI send, or
    the ready WebSocket frame for a direct write; each form is built at most once.

    A fan-out frame also keeps its ``push`` (the v1 struct it was encoded from):
    a connection speaking another protocol takes :meth:`variant`, encoded once
    per codec in use and cached here, so a publication costs one encoding per
    protocol, never one per subscriber."""

    __slots__ = ("_text", "_variants", "_wire", "data", "push", "size")

    def __init__(self, data: bytes, text: str | None = None, push: Push | None = None) -> None:
        self.data = data
        self.size = len(data)
        self._text = text
        self._wire: bytes | None = None
        self.push = push
        self._variants: dict[Codec, Frame] | None = None

    def variant(self, codec: Codec) -> Frame:
        """This push encoded by ``codec`` (this frame itself when it is no push)."""
        push = self.push
        if push is None:
            return self
        variants = self._variants
        if variants is None:
            variants = self._variants = {}
        frame = variants.get(codec)
        if frame is None:
            frame = variants[codec] = Frame(codec.encode_push(push))
        return frame

    @classmethod
    def from_text(cls, text: str) -> Frame:
        return cls(text.encode(), text)

    @property
    def text(self) -> str:
        text = self._text
        if text is None:
            text = self._text = self.data.decode()
        return text

    @property
    def wire(self) -> bytes:
        wire = self._wire
        if wire is None:
            wire = self._wire = frame_text(self.data)
        return wire
