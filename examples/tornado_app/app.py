"""Tornado + a standalone hub (``hubbub serve``).

Tornado runs on asyncio, so handlers use ``hubbub.AsyncPublisher`` (the sync
``Publisher`` would block the IOLoop while it waits for the hub).

Run:  HUBBUB_SECRET=... HUBBUB_API_KEY=... hubbub serve
      HUBBUB_API_KEY=... python app.py            # http://127.0.0.1:8888
"""

from __future__ import annotations

import asyncio
import os

import tornado.web

import hubbub


class BaseHandler(tornado.web.RequestHandler):
    @property
    def publisher(self) -> hubbub.AsyncPublisher:
        publisher: hubbub.AsyncPublisher = self.application.settings["publisher"]
        return publisher


class AlertHandler(BaseHandler):
    async def post(self, room: str) -> None:
        text = self.get_body_argument("text", "")[:500]
        if not text:
            raise tornado.web.HTTPError(400, "text is required")
        try:
            result = await self.publisher.publish(f"alerts:{room}", {"text": text})
        except hubbub.PublishError as exc:
            raise tornado.web.HTTPError(502, f"hub refused: {exc.code}") from exc
        self.write({"offset": result.offset, "epoch": result.epoch})


def make_app(publisher: hubbub.AsyncPublisher) -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/alerts/([A-Za-z0-9_-]+)", AlertHandler)], publisher=publisher
    )


async def main() -> None:
    url = os.environ.get("HUBBUB_URL", "http://127.0.0.1:8000")
    async with hubbub.AsyncPublisher(url, os.environ["HUBBUB_API_KEY"]) as publisher:
        make_app(publisher).listen(int(os.environ.get("PORT", "8888")), "127.0.0.1")
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
