#!/usr/bin/python3
"""Reference packets for sc/wire tests, built by scapy (an independent implementation).

Run by sc/wire/reference.test.ts with /usr/bin/python3 (Debian's python3-scapy). Prints
JSON: {"scapy": version, "cases": [...]}. Each case has the packet bytes as hex, the fields
our parser must produce, and whether our emitter must reproduce the bytes exactly ("emit":
only for layouts our emitter writes, e.g. TCP options in Linux's order). Cases with
"error" expect that typed error kind from our parser instead.

GUE has no scapy layer: its header is built here as raw UDP payload bytes, following
draft-ietf-intarea-gue (variant 0: 2-bit version 0, C bit, 5-bit hlen, proto, flags).
"""
import ipaddress
import json
import random
import struct
import sys

import scapy
from scapy.all import ICMP, IP, TCP, UDP, IPOption_Router_Alert, IPOption_RR, IPv6, Raw, conf

conf.verb = 0
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 20240601)
cases = []


def u32(addr):
    return int(ipaddress.IPv4Address(addr))


def ip_fields(p, payload_hex=None):
    raw = bytes(p)
    ihl = (raw[0] & 0x0F) * 4
    total = (raw[2] << 8) | raw[3]
    return {
        "src": u32(p.src),
        "dst": u32(p.dst),
        "protocol": raw[9],
        "ttl": raw[8],
        "tos": raw[1],
        "id": (raw[4] << 8) | raw[5],
        "dontFrag": bool(raw[6] & 0x40),
        "moreFrags": bool(raw[6] & 0x20),
        "fragOffset": (((raw[6] & 0x1F) << 8) | raw[7]) * 8,
        "headerLength": ihl,
        "totalLength": total,
        "options": raw[20:ihl].hex(),
        "payload": raw[ihl:total].hex() if payload_hex is None else payload_hex,
    }


def send_params(p):
    f = ip_fields(p)
    return {k: f[k] for k in ("src", "dst", "ttl", "tos", "id", "dontFrag")}


def add(layer, name, pkt_bytes, **kw):
    case = {"layer": layer, "name": name, "hex": bytes(pkt_bytes).hex()}
    case.update(kw)
    cases.append(case)


def rand_addr():
    return str(ipaddress.IPv4Address(rng.getrandbits(32)))


# ---------------------------------------------------------------- IPv4
base = dict(src="198.18.0.2", dst="198.18.100.1")
p = IP(**base, ttl=64, id=0x1234, flags="DF", proto=6) / Raw(b"hello")
add("ipv4", "plain DF", p, fields=ip_fields(p), emit=True)
p = IP(**base, ttl=1, tos=0xB8, id=0, proto=17) / Raw(b"")
add("ipv4", "tos, ttl 1, empty payload", p, fields=ip_fields(p), emit=True)
p = IP(**base, id=7, proto=1, options=[IPOption_Router_Alert()]) / Raw(b"abc")
add("ipv4", "router-alert option", p, fields=ip_fields(p), emit=True)
p = IP(**base, id=8, proto=6, options=[IPOption_RR(routers=["198.18.0.1", "198.18.0.3"])]) / Raw(b"x" * 10)
add("ipv4", "record-route option (padded)", p, fields=ip_fields(p), emit=True)
p = IP(**base, id=9, proto=6, options=IPOption_RR(routers=["0.0.0.0"] * 9)) / Raw(b"y")
add("ipv4", "max 40 bytes of options", p, fields=ip_fields(p), emit=True)
p = IP(**base, id=10, flags="MF", frag=0, proto=17) / Raw(b"z" * 16)
add("ipv4", "first fragment", p, fields=ip_fields(p), emit=True, fragment=True)
p = IP(**base, id=10, flags=0, frag=185, proto=17) / Raw(b"z" * 16)
add("ipv4", "last fragment", p, fields=ip_fields(p), emit=True, fragment=True)
p = IP(**base, id=11, flags="MF", frag=8191, proto=6) / Raw(b"q" * 8)
add("ipv4", "max fragment offset", p, fields=ip_fields(p), emit=True, fragment=True)
p = IP(**base, id=12, proto=6) / Raw(b"payload")
add("ipv4", "trailing bytes after total length (Ethernet padding)", bytes(p) + b"\x00" * 9, fields=ip_fields(p))
for i in range(40):
    n_opt = rng.choice([0, 0, 1, 2])
    opts = [IPOption_Router_Alert()] * n_opt
    frag = rng.choice([0, 0, rng.randrange(8192)])
    flags = rng.choice([0, 2]) | (rng.choice([0, 1]) if frag == 0 else 1)
    p = IP(
        src=rand_addr(),
        dst=rand_addr(),
        ttl=rng.randrange(256),
        tos=rng.randrange(256),
        id=rng.randrange(65536),
        flags=flags,
        frag=frag,
        proto=rng.randrange(256),
        options=opts,
    ) / Raw(bytes(rng.getrandbits(8) for _ in range(rng.randrange(64))))
    f = ip_fields(p)
    add("ipv4", f"random {i}", p, fields=f, emit=True, fragment=f["moreFrags"] or f["fragOffset"] > 0)
raw = bytearray(bytes(IP(**base, proto=6) / Raw(b"abc")))
raw[10] ^= 0x01
add("ipv4", "bad header checksum", raw, error="bad-checksum")
add("ipv4", "IPv6 packet", IPv6() / Raw(b"x" * 8), error="bad-version")
p = bytes(IP(**base, proto=6) / Raw(b"abcdef"))
add("ipv4", "truncated below total length", p[:-2], error="truncated")
add("ipv4", "truncated header", p[:19], error="truncated")
p = IP(**base, ihl=4, proto=6) / Raw(b"abcdefgh")
add("ipv4", "IHL 4", p, error="bad-header-length")
p = IP(**base, len=16, proto=6) / Raw(b"abcdefgh")
add("ipv4", "total length < header length", p, error="bad-length")

# ---------------------------------------------------------------- TCP
def linux_layout(o):
    """TCP options as scapy tuples, in the order our emitter (and Linux) writes them."""
    out = []
    if "mss" in o:
        out.append(("MSS", o["mss"]))
    if "timestamp" in o:
        if o.get("sackPermitted"):
            out.append(("SAckOK", b""))
        else:
            out += [("NOP", None), ("NOP", None)]
        out.append(("Timestamp", (o["timestamp"]["tsval"], o["timestamp"]["tsecr"])))
    if "wscale" in o:
        out += [("NOP", None), ("WScale", o["wscale"])]
    if o.get("sackPermitted") and "timestamp" not in o:
        out += [("NOP", None), ("NOP", None), ("SAckOK", b"")]
    if o.get("sack"):
        out += [("NOP", None), ("NOP", None), ("SAck", tuple(x for blk in o["sack"] for x in blk))]
    return out


def tcp_case(name, ip, tcp, opts, payload=b"", scapy_options=None, emit=True, **kw):
    layout = linux_layout(opts) if scapy_options is None else scapy_options
    p = ip / TCP(options=layout, **tcp) / Raw(payload)
    raw = bytes(p)
    ihl = (raw[0] & 0x0F) * 4
    t = raw[ihl:]
    fields = {
        "srcPort": (t[0] << 8) | t[1],
        "dstPort": (t[2] << 8) | t[3],
        "seq": struct.unpack("!I", t[4:8])[0],
        "ack": struct.unpack("!I", t[8:12])[0],
        "flags": t[13],
        "window": (t[14] << 8) | t[15],
        "urgent": (t[18] << 8) | t[19],
        "options": opts,
        "payload": payload.hex(),
    }
    add("tcp", name, raw, ip=send_params(p), tcp=fields, emit=emit, **kw)


ipt = IP(**base, ttl=64, id=0x4242, flags="DF")
syn = dict(sport=40000, dport=80, seq=1000, flags="S", window=64240)
tcp_case("no options", ipt, dict(sport=1, dport=2, seq=3, ack=4, flags="A", window=5), {})
tcp_case("MSS", ipt, syn, {"mss": 1460})
tcp_case("window scale", ipt, syn, {"wscale": 7})
tcp_case("window scale 14", ipt, syn, {"wscale": 14})
tcp_case("SACK permitted", ipt, syn, {"sackPermitted": True})
tcp_case("timestamps", ipt, dict(syn, flags="A", ack=77), {"timestamp": {"tsval": 0xDEADBEEF, "tsecr": 1}})
tcp_case("SACK 1 block", ipt, dict(syn, flags="A", ack=5), {"sack": [[100, 200]]})
tcp_case("SACK 4 blocks", ipt, dict(syn, flags="A", ack=5), {"sack": [[1, 2], [3, 4], [5, 6], [0xFFFFFFF0, 0xFFFFFFFF]]})
tcp_case(
    "Linux SYN: MSS, SACK-permitted+TS, NOP WS",
    ipt,
    syn,
    {"mss": 1460, "sackPermitted": True, "timestamp": {"tsval": 12345, "tsecr": 0}, "wscale": 7},
)
tcp_case("MSS + SACK-permitted + WS", ipt, syn, {"mss": 536, "sackPermitted": True, "wscale": 0})
tcp_case(
    "TS + 3 SACK blocks + payload",
    ipt,
    dict(sport=80, dport=40000, seq=0xFFFFFFFF, ack=0x80000000, flags="PA", window=502),
    {"timestamp": {"tsval": 1, "tsecr": 2}, "sack": [[10, 20], [30, 40], [50, 60]]},
    payload=b"GET / HTTP/1.1\r\n\r\n",
)
tcp_case("all flags, urgent", ipt, dict(sport=5, dport=6, seq=7, ack=8, flags=0xFF, window=9, urgptr=0xABCD), {})
# Layouts our emitter does not produce: parse only.
tcp_case(
    "Windows SYN layout: MSS NOP WS NOP NOP SACKOK",
    ipt,
    syn,
    {"mss": 1460, "wscale": 8, "sackPermitted": True},
    scapy_options=[("MSS", 1460), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")],
    emit=False,
)
tcp_case(
    "EOL ends options; bytes after it ignored",
    ipt,
    syn,
    {"mss": 1400},
    scapy_options=[("MSS", 1400), ("EOL", None), ("NOP", None), ("NOP", None), ("NOP", None)],
    emit=False,
)
tcp_case(
    "unknown options skipped by length (MPTCP 30, TFO 34, kind 99)",
    ipt,
    syn,
    {"mss": 1200, "wscale": 2},
    scapy_options=[(30, b"\x00\x81\x02\x03"), ("MSS", 1200), (34, b""), (99, b"\x01"), ("WScale", 2)],
    emit=False,
)
tcp_case(
    "window scale 15 clamped to 14",
    ipt,
    syn,
    {"wscale": 14},
    scapy_options=[("WScale", 15)],
    emit=False,
)
tcp_case("SACK-permitted alone, unpadded", ipt, syn, {"sackPermitted": True}, scapy_options=[("SAckOK", b"")], emit=False)
tcp_case(
    "timestamps first, then MSS",
    ipt,
    syn,
    {"mss": 9000, "timestamp": {"tsval": 5, "tsecr": 6}},
    scapy_options=[("Timestamp", (5, 6)), ("MSS", 9000)],
    emit=False,
)
for i in range(60):
    o = {}
    if rng.random() < 0.5:
        o["mss"] = rng.randrange(65536)
    if rng.random() < 0.5:
        o["wscale"] = rng.randrange(15)
    if rng.random() < 0.5:
        o["sackPermitted"] = True
    if rng.random() < 0.5:
        o["timestamp"] = {"tsval": rng.getrandbits(32), "tsecr": rng.getrandbits(32)}
    room = 40 - (4 * ("mss" in o) + 4 * ("wscale" in o) + (12 if "timestamp" in o else 4 if "sackPermitted" in o else 0))
    n_sack = rng.randrange(0, min(4, (room - 4) // 8) + 1) if room >= 12 else 0
    if n_sack:
        o["sack"] = [[rng.getrandbits(32), rng.getrandbits(32)] for _ in range(n_sack)]
    ipr = IP(src=rand_addr(), dst=rand_addr(), ttl=rng.randrange(256), tos=rng.randrange(256),
             id=rng.randrange(65536), flags=rng.choice([0, 2]))
    t = dict(sport=rng.randrange(65536), dport=rng.randrange(65536), seq=rng.getrandbits(32),
             ack=rng.getrandbits(32), flags=rng.randrange(256), window=rng.randrange(65536),
             urgptr=rng.randrange(65536))
    tcp_case(f"random {i}", ipr, t, o, payload=bytes(rng.getrandbits(8) for _ in range(rng.randrange(100))))


def tcp_error(name, options_raw, kind, payload=b""):
    # Raw option bytes, padded to a 4-byte multiple with EOL, in a valid segment.
    pad = options_raw + b"\x00" * (-len(options_raw) % 4)
    p = ipt / TCP(sport=1, dport=2, dataofs=5 + len(pad) // 4) / Raw(pad + payload)
    add("tcp", name, p, error=kind)


tcp_error("option length 0", b"\x1e\x00", "bad-option")
tcp_error("option length 1", b"\x1e\x01", "bad-option")
tcp_error("option runs past header", b"\x01\x1e\x06\x00", "bad-option")
tcp_error("option without length byte at the end", b"\x01\x01\x01\x1e", "bad-option")
tcp_error("MSS length 3", b"\x02\x03\x05\x00", "bad-option")
tcp_error("window scale length 4", b"\x03\x04\x07\x00", "bad-option")
tcp_error("SACK-permitted length 3", b"\x04\x03\x00\x00", "bad-option")
tcp_error("timestamp length 8", b"\x08\x08" + b"\x00" * 6, "bad-option")
tcp_error("SACK length 6", b"\x05\x06" + b"\x00" * 4, "bad-option")
tcp_error("SACK length 9", b"\x05\x09" + b"\x00" * 7, "bad-option")
p = bytearray(bytes(ipt / TCP(sport=1, dport=2) / Raw(b"data")))
p[-1] ^= 0xFF
add("tcp", "bad TCP checksum", p, error="bad-checksum")
p = ipt / TCP(sport=1, dport=2, dataofs=4) / Raw(b"data....")
add("tcp", "data offset 4", p, error="bad-header-length")
p = ipt / TCP(sport=1, dport=2, dataofs=15) / Raw(b"data")
add("tcp", "data offset past segment", p, error="truncated")

# ---------------------------------------------------------------- UDP
def udp_case(name, ip, sport, dport, payload, checksum=True, emit=True):
    u = UDP(sport=sport, dport=dport) if checksum else UDP(sport=sport, dport=dport, chksum=0)
    p = ip / u / Raw(payload)
    add("udp", name, p, ip=send_params(p), udp={"srcPort": sport, "dstPort": dport, "payload": payload.hex()},
        checksum=checksum, emit=emit)


ipu = IP(**base, ttl=64, id=3, flags="DF")
udp_case("checksum", ipu, 5353, 53, b"query")
udp_case("zero checksum (none)", ipu, 5353, 53, b"query", checksum=False)
udp_case("empty payload", ipu, 1, 65535, b"")
udp_case("odd payload", ipu, 65535, 0, b"abc")
# Find a payload whose computed checksum is 0, which must be sent as 0xffff.
for n in range(1, 1 << 16):
    pl = struct.pack("!H", n)
    raw = bytes(IP(**base, ttl=64, id=3, flags="DF") / UDP(sport=7, dport=7) / Raw(pl))
    if raw[26:28] == b"\xff\xff":
        udp_case("computed checksum 0 sent as 0xffff", ipu, 7, 7, pl)
        break
for i in range(20):
    ipr = IP(src=rand_addr(), dst=rand_addr(), ttl=rng.randrange(256), tos=rng.randrange(256),
             id=rng.randrange(65536), flags=rng.choice([0, 2]))
    udp_case(f"random {i}", ipr, rng.randrange(65536), rng.randrange(65536),
             bytes(rng.getrandbits(8) for _ in range(rng.randrange(200))), checksum=rng.random() < 0.8)
p = bytearray(bytes(ipu / UDP(sport=1, dport=2) / Raw(b"data")))
p[-1] ^= 0x10
add("udp", "bad UDP checksum", p, error="bad-checksum")
add("udp", "UDP length 7", ipu / UDP(sport=1, dport=2, len=7) / Raw(b"data"), error="bad-length")
add("udp", "UDP length past datagram", ipu / UDP(sport=1, dport=2, len=20) / Raw(b"data"), error="truncated")
# Zero checksum: scapy would sum the whole IP payload, Linux (and we) only the UDP length.
p = ipu / UDP(sport=1, dport=2, len=10, chksum=0) / Raw(b"data")
add("udp", "UDP length shorter than IP payload: trailing bytes ignored", p, ip=send_params(p),
    udp={"srcPort": 1, "dstPort": 2, "payload": b"da".hex()}, checksum=False, emit=False)

# ---------------------------------------------------------------- GUE
inner_tcp = IP(src="198.18.0.2", dst="198.18.100.1", ttl=63, id=99) / TCP(sport=40000, dport=80, flags="S",
                                                                          options=[("MSS", 1460)])
inner = bytes(inner_tcp)
outer = IP(src="198.18.0.10", dst="198.18.0.11", ttl=64, id=1, flags="DF")


def gue0(proto=4, c=0, hlen=0, flags=0, ext=b""):
    return bytes([(c << 5) | hlen, proto]) + struct.pack("!H", flags) + ext


def gue_case(name, payload, sport=40001, dport=6080, checksum=False, **kw):
    u = UDP(sport=sport, dport=dport) if checksum else UDP(sport=sport, dport=dport, chksum=0)
    p = outer / u / Raw(payload)
    add("gue", name, p, outer=dict(send_params(p), srcPort=sport, dstPort=dport, udpChecksum=checksum), **kw)


gue_case("variant 0, proto 4", gue0() + inner, gue={"variant": 0, "proto": 4, "flags": 0, "headerLength": 4},
         inner=inner.hex(), emit=True)
gue_case("variant 0 with UDP checksum", gue0() + inner, checksum=True,
         gue={"variant": 0, "proto": 4, "flags": 0, "headerLength": 4}, inner=inner.hex(), emit=True)
gue_case("variant 1 (bare IPv4)", inner, gue={"variant": 1, "proto": 4, "flags": 0, "headerLength": 0},
         inner=inner.hex(), emit=True)
gue_case("variant 1 with UDP checksum", inner, checksum=True,
         gue={"variant": 1, "proto": 4, "flags": 0, "headerLength": 0}, inner=inner.hex(), emit=True)
gue_case("variant 0, 2 words of extension fields skipped", gue0(hlen=2, flags=0x8000, ext=b"\x11" * 8) + inner,
         gue={"variant": 0, "proto": 4, "flags": 0x8000, "headerLength": 12}, inner=inner.hex(), emit=False)
gue_case("variant 0, max hlen 31", gue0(hlen=31, ext=b"\x00" * 124) + inner,
         gue={"variant": 0, "proto": 4, "flags": 0, "headerLength": 128}, inner=inner.hex(), emit=False)
gue_case("control message (C=1)", gue0(proto=0, c=1) + b"\x00" * 8, error="gue-control")
gue_case("variant 0, proto 41 (IPv6)", gue0(proto=41) + bytes(IPv6()), error="unsupported")
gue_case("variant 1 carrying IPv6", bytes(IPv6() / Raw(b"x")), error="unsupported")
gue_case("version 2", b"\x80\x04\x00\x00" + inner, error="bad-version")
gue_case("version 3", b"\xc0\x04\x00\x00" + inner, error="bad-version")
gue_case("variant 1, nibble 5", b"\x50" + inner[1:], error="bad-version")
gue_case("hlen past payload", gue0(hlen=3) + b"\x00" * 4, error="truncated")
gue_case("3-byte payload", b"\x00\x04\x00", error="truncated")
gue_case("empty payload", b"", error="truncated")

# ---------------------------------------------------------------- ICMP
def icmp_case(name, icmp_layer, payload, fields, ip=None, emit=True, **kw):
    p = (ip or IP(src="198.18.100.1", dst="198.18.0.2", ttl=64, id=0x77)) / icmp_layer / Raw(payload)
    add("icmp", name, p, ip=send_params(p), icmp=fields, emit=emit, **kw)


icmp_case("echo request", ICMP(type=8, id=0x1234, seq=1), b"abcdefgh" * 7,
          {"kind": "echo-request", "id": 0x1234, "seq": 1, "data": (b"abcdefgh" * 7).hex()})
icmp_case("echo reply", ICMP(type=0, id=0xFFFF, seq=0xFFFF), b"x",
          {"kind": "echo-reply", "id": 0xFFFF, "seq": 0xFFFF, "data": b"x".hex()})
icmp_case("echo request, no data", ICMP(type=8, id=0, seq=0), b"",
          {"kind": "echo-request", "id": 0, "seq": 0, "data": ""})
orig = bytes(IP(src="198.18.0.2", dst="198.18.100.1", id=5, flags="DF") /
             TCP(sport=40000, dport=80, seq=0x01020304, flags="A") / Raw(b"y" * 1400))
q = orig[:28]
icmp_case("frag needed, MTU 1400, header + 8 quoted", ICMP(type=3, code=4, nexthopmtu=1400), q,
          {"kind": "dest-unreachable", "code": 4, "nextHopMtu": 1400, "quoted": q.hex()},
          quote={"src": u32("198.18.0.2"), "dst": u32("198.18.100.1"), "protocol": 6, "srcPort": 40000,
                 "dstPort": 80, "transport": orig[20:28].hex()})
q = orig[:548]
icmp_case("frag needed, 548 bytes quoted", ICMP(type=3, code=4, nexthopmtu=576), q,
          {"kind": "dest-unreachable", "code": 4, "nextHopMtu": 576, "quoted": q.hex()})
q = orig[:28]
icmp_case("port unreachable", ICMP(type=3, code=3), q,
          {"kind": "dest-unreachable", "code": 3, "nextHopMtu": 0, "quoted": q.hex()})
p = IP(src="198.18.100.1", dst="198.18.0.2") / ICMP(type=11, code=0) / Raw(q)
add("icmp", "time exceeded (unsupported)", p, error="unsupported")
p = bytearray(bytes(IP(src="198.18.100.1", dst="198.18.0.2") / ICMP(type=8) / Raw(b"abc")))
p[-1] ^= 1
add("icmp", "bad ICMP checksum", p, error="bad-checksum")
add("icmp", "7-byte ICMP message", bytes(IP(src="198.18.100.1", dst="198.18.0.2", proto=1) / Raw(b"\x08" * 7)),
    error="truncated")

json.dump({"scapy": scapy.VERSION, "cases": cases}, sys.stdout)
