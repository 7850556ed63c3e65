"""A customer on aiortc (a WebRTC stack other than the browsers' and str0m) with max-bundle.

Joins a Tandem session by its number over the real HTTP and WebSocket signalling
(docs/protocol.md), joins the voice call, and connects media as the customer's page does: the
three data channels, an audio transceiver (sendrecv) and a screen share (sendonly video), all
on one transport (bundlePolicy max-bundle), answering the server's own offers (the video it
forwards). aiortc reads ICE candidates per m-section and, with max-bundle, takes those of the
last m-section it reads: the server must name its candidate in every one (media/src/
sdp_candidates.rs). Run by tests/server/interop.rs.

Usage: aiortc_customer.py BASE_URL SESSION_NUMBER PATIENCE_SECONDS

Waits until it is connected and has received audio and video packets and its data channels
are open, or PATIENCE_SECONDS pass, then prints one JSON report on stdout and exits 0; any
failure of its own (the join refused, the WebSocket closed) exits non-zero.
"""

import asyncio
import fractions
import json
import logging
import os
import sys
import time
import urllib.request

import av
import websockets
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

LABELS = ("control", "pointer", "annotation")
# Enough packets that media is flowing, not a single stray one: 1 s of audio, a few frames of
# video.
AUDIO_PACKETS = 50
VIDEO_PACKETS = 10


class SmallScreen(VideoStreamTrack):
    """A screen share of small grey frames: cheap to encode on a busy machine."""

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=160, height=120, format="yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base or fractions.Fraction(1, 90000)
        return frame


def join(base, number):
    body = json.dumps(
        {"number": number, "name": "Aiortc", "email": "aiortc@example.org"}
    ).encode()
    req = urllib.request.Request(
        base + "/api/join",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


class Customer:
    def __init__(self, ws):
        self.ws = ws
        self.next_ref = 1
        self.waiting = {}
        self.pc = RTCPeerConnection(
            RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.answer_sdp = None
        self.server_offers = []
        self.server_answers = []
        self.void_offers = 0
        # Each step of negotiation, ours or the server's, runs in turn (as the page's inTurn).
        self.turn = asyncio.Lock()
        self.frames = {"audio": 0, "video": 0}
        self.channels = {}
        self.opened = set()
        self.errors = []

    async def request(self, frame):
        ref = self.next_ref
        self.next_ref += 1
        frame["ref"] = ref
        done = asyncio.get_running_loop().create_future()
        self.waiting[ref] = done
        await self.ws.send(json.dumps(frame))
        return await done

    async def read(self):
        """Every frame from the server: answers to requests, and the server's offers."""
        async for text in self.ws:
            frame = json.loads(text)
            ref = frame.get("ref")
            if ref in self.waiting:
                self.waiting.pop(ref).set_result(frame)
            elif frame.get("type") == "media_offer" and "offer" in frame:
                # Not awaited here: the answer to our own offer may still be on its way.
                asyncio.ensure_future(self.answer_server(frame))
            elif frame.get("type") == "error":
                self.errors.append(frame)
        raise RuntimeError("the server closed the WebSocket")

    async def answer_server(self, m):
        """The server renegotiates (a track to receive): answered as the page does, once our
        own offer is settled, unless our offer made it void."""
        self.server_offers.append(m["sdp"])
        async with self.turn:
            if self.pc.signalingState != "stable" or m["offer"] <= self.void_offers:
                return
            await self.pc.setRemoteDescription(RTCSessionDescription(m["sdp"], "offer"))
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.server_answers.append(m["offer"])
            await self.ws.send(
                json.dumps(
                    {
                        "type": "media_answer",
                        "offer": m["offer"],
                        "sdp": self.pc.localDescription.sdp,
                    }
                )
            )

    def count(self, track):
        async def frames():
            while True:
                try:
                    await track.recv()
                except Exception:
                    return
                self.frames[track.kind] += 1

        asyncio.ensure_future(frames())

    async def connect(self):
        pc = self.pc
        pc.on("track", self.count)
        pc.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        screen = pc.addTransceiver(SmallScreen(), direction="sendonly")
        # After the transceivers, unlike the page: aiortc (1.16) with max-bundle, given a data
        # channel first, stops the one transport it shares once the answer bundles them.
        for label in LABELS:
            ch = pc.createDataChannel(label)
            ch.on("open", lambda label=label: self.opened.add(label))
            self.channels[label] = ch
        async with self.turn:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await self.request(
                {
                    "type": "media_offer",
                    "sdp": pc.localDescription.sdp,
                    "video": {screen.mid: "screen"},
                }
            )
            if answer.get("type") != "media_answer":
                raise RuntimeError(f"the offer was refused: {answer}")
            self.answer_sdp = answer["sdp"]
            self.void_offers = max(self.void_offers, answer["void_offers"])
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))

    async def packets(self):
        got = {"audio": 0, "video": 0}
        for receiver in self.pc.getReceivers():
            for s in (await receiver.getStats()).values():
                if s.type == "inbound-rtp":
                    got[s.kind] += s.packetsReceived
        return got

    async def report(self):
        pc = self.pc
        dtls = sorted({r.transport.state for r in pc.getReceivers()})
        return {
            "connection_state": pc.connectionState,
            "ice_connection_state": pc.iceConnectionState,
            "dtls_states": dtls,
            "packets": await self.packets(),
            "frames": self.frames,
            "channels_open": sorted(self.opened),
            "answer_sdp": self.answer_sdp,
            "server_offer_sdps": self.server_offers,
            "server_offers_answered": self.server_answers,
            "errors": self.errors,
        }

    async def done(self):
        p = await self.packets()
        return (
            self.pc.connectionState == "connected"
            and p["audio"] >= AUDIO_PACKETS
            and p["video"] >= VIDEO_PACKETS
            and len(self.opened) == len(LABELS)
        )


async def main(base, number, patience):
    deadline = time.monotonic() + patience
    joined = join(base, number)
    url = base.replace("http://", "ws://", 1) + "/ws?token=" + joined["token"]
    async with websockets.connect(url) as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        c = Customer(ws)
        reader = asyncio.ensure_future(c.read())
        try:
            ok = await c.request({"type": "join_voice"})
            assert ok["type"] == "ok", ok
            await c.connect()
            while time.monotonic() < deadline and not await c.done():
                if reader.done():
                    reader.result()
                await asyncio.sleep(0.05)
            print(json.dumps(await c.report()), flush=True)
        finally:
            reader.cancel()
            await c.pc.close()


if __name__ == "__main__":
    # Warnings (and with INTEROP_DEBUG=1 everything aiortc and aioice say) go to stderr, which
    # the test shows when it fails.
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("INTEROP_DEBUG") else logging.WARNING
    )
    # The test's video is the str0m test client's synthetic frames, RTP that carries no real
    # VP8: aiortc warns of each frame it cannot decode. Packets are what is counted.
    if not os.environ.get("INTEROP_DEBUG"):
        logging.getLogger("aiortc.rtcrtpreceiver").setLevel(logging.ERROR)
    base, number, patience = sys.argv[1], sys.argv[2], float(sys.argv[3])
    asyncio.run(main(base, number, patience))
