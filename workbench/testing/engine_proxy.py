"""``python -m workbench.testing.engine_proxy HOST PORT SOCKET``: a Docker engine on a node's own address.

Forwards every TCP connection on HOST:PORT to the engine's unix SOCKET, byte for byte (the Engine
API's hijacked attach streams included), and prints ``ready`` once listening. Started in a testbed
node's network namespace (``testbed.start_engine_proxy``), it dies with the node (``stop_node``):
to the client, that node's engine is lost mid-run.
"""

from __future__ import annotations

import asyncio
import os
import sys


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(1 << 16):
            target.write(data)
            await target.drain()
    except OSError:
        pass
    finally:
        target.close()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, socket_path: str) -> None:
    try:
        engine_reader, engine_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, engine_writer), _pipe(engine_reader, writer))


async def serve(host: str, port: int, socket_path: str) -> None:
    server = await asyncio.start_server(lambda r, w: _forward(r, w, socket_path), host, port)
    os.write(1, b"ready\n")  # the parent waits for this line
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
