#!/usr/bin/env python3
"""A DNS forwarder that delays every answer: bench/scale.sh's stand-in for
`tc qdisc add dev eth0 root netem delay 20ms` on the resolver's link, for
kernels built without sch_netem (CONFIG_NET_SCH_NETEM unset).

    python3 scale-dnsdelay.py LISTEN_IP UPSTREAM_IP UPSTREAM_PORT DELAY_MS

Listens on [LISTEN_IP]:53 (UDP and TCP). Each query goes to the upstream at
once; its answer is sent back DELAY_MS later (queries in flight overlap, as
on a link with that one-way delay: every query's round trip grows by
DELAY_MS). TCP: the upstream's bytes are passed on DELAY_MS after they came.
Prints "ready" once both sockets listen. Ends on SIGTERM.
"""
import asyncio
import signal
import socket
import sys

listen_ip, up_ip, up_port, delay_ms = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
DELAY = delay_ms / 1000.0


class Upstream(asyncio.DatagramProtocol):
    def __init__(self, fut):
        self.fut = fut

    def datagram_received(self, data, addr):
        if not self.fut.done():
            self.fut.set_result(data)


class Front(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        asyncio.get_running_loop().create_task(self.forward(data, addr))

    async def forward(self, data, addr):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        tr, _ = await loop.create_datagram_endpoint(lambda: Upstream(fut), remote_addr=(up_ip, up_port))
        try:
            tr.sendto(data)
            answer = await asyncio.wait_for(fut, 5)
        except (asyncio.TimeoutError, OSError):
            return
        finally:
            tr.close()
        await asyncio.sleep(DELAY)
        self.transport.sendto(answer, addr)


async def tcp_client(reader, writer):
    try:
        ureader, uwriter = await asyncio.open_connection(up_ip, up_port)
    except OSError:
        writer.close()
        return

    async def up():
        try:
            while data := await reader.read(65536):
                uwriter.write(data)
                await uwriter.drain()
        finally:
            uwriter.close()

    async def down():
        try:
            while data := await ureader.read(65536):
                await asyncio.sleep(DELAY)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    await asyncio.gather(up(), down(), return_exceptions=True)


async def main():
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(Front, local_addr=(listen_ip, 53), family=socket.AF_INET6)
    server = await asyncio.start_server(tcp_client, listen_ip, 53)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    print("ready", flush=True)
    await stop
    server.close()


asyncio.run(main())
