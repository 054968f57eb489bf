"""Writes the HTTP/2 fuzzer's seed corpus: what a client sends after the connection preface.

Run from the repository root: python3 Fuzz/http2/make_corpus.py (standard library only).
Header blocks use HPACK's static table and literals without Huffman coding (RFC 7541), so the
bytes are readable and need no HPACK library.
"""
import os
import struct

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def literal(name_index, value):
    """A field with an indexed name and a literal value, without indexing."""
    return bytes([name_index, len(value)]) + value


def request(method_index=0x82, path=b"/healthz", extra=b""):
    # 0x82 GET / 0x83 POST, 0x86 :scheme http, :path (static 4), :authority (static 1)
    return bytes([method_index, 0x86]) + literal(0x04, path) + literal(0x01, b"localhost") + extra


settings = frame(SETTINGS, 0, 0)
seeds = {
    "get": settings + frame(HEADERS, END_HEADERS | END_STREAM, 1, request()),
    "post-body": settings + frame(HEADERS, END_HEADERS, 1, request(0x83, b"/v1/completions"))
    + frame(DATA, 0, 1, b'{"a":') + frame(DATA, END_STREAM, 1, b"1}"),
    "continuation": settings + frame(HEADERS, 0, 1, request()[:4]) + frame(CONTINUATION, END_HEADERS | END_STREAM, 1, request()[4:]),
    "reset": settings + frame(HEADERS, END_HEADERS | END_STREAM, 1, request()) + frame(RST_STREAM, 0, 1, struct.pack(">I", 8)),
    "ping-window-goaway": settings + frame(PING, 0, 0, b"12345678") + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 65536))
    + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    # A field added to the dynamic table (literal with incremental indexing, new name), then referenced.
    "hpack-dynamic": settings + frame(HEADERS, END_HEADERS | END_STREAM, 1, request(extra=b"\x40\x03x-a\x03abc\xbe\xbe")),
    "zero-window": frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)) + frame(HEADERS, END_HEADERS | END_STREAM, 1, request())
    + frame(HEADERS, END_HEADERS | END_STREAM, 3, request(path=b"/stream")) + frame(WINDOW_UPDATE, 0, 3, struct.pack(">I", 10)),
    "settings-ack-streams": settings + frame(SETTINGS, 1, 0) + b"".join(
        frame(HEADERS, END_HEADERS | END_STREAM, stream, request()) for stream in range(1, 13, 2)),
}
directory = os.path.join(os.path.dirname(__file__), "corpus")
os.makedirs(directory, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(directory, name), "wb") as out:
        out.write(data)
print(f"wrote {len(seeds)} seeds to {directory}")
