#!/usr/bin/python3
"""Reference GUE packets for the dispatcher tests, built by scapy (an independent encoder).

Run by dispatcher/gue-reference.test.ts with /usr/bin/python3 (Debian's python3-scapy).

  gue_reference.py clients
      prints JSON {"clients": [hex, ...]}: client IPv4/TCP packets to the VIP (SYN with
      options, ACK with payload, FIN, odd TOS, IP options).
  gue_reference.py encap < cases.json
      cases: [{"inner": hex, "src", "dst", "id", "ttl", "tos", "sport", "dport",
      "variant", "csum"}]; prints JSON {"outer": [hex, ...]}: IPv4/UDP(/GUE) around the
      inner packet as IPVS's and Katran's GUE tunnels send it (DF clear), the UDP checksum
      0 unless csum, then computed by scapy.
  gue_reference.py payloads
      prints JSON {"payloads": [{"name", "hex", "inner" (hex or null), "error" (or null)}]}:
      UDP payloads a GUE receiver may get, valid and not.

GUE has no scapy layer, so its 4-byte header is raw bytes (draft-ietf-intarea-gue:
2-bit version, C bit, 5-bit Hlen, Proto/ctype, 16-bit flags).
"""
import json
import sys

from scapy.all import IP, TCP, UDP, IPOption_Router_Alert, Raw, conf

conf.verb = 0
VIP = "198.18.100.1"
CLIENT = "198.18.0.101"


def gue_header(proto=4, hlen=0, control=False, version=0, flags=0):
    b0 = (version << 6) | (0x20 if control else 0) | (hlen & 0x1F)
    return bytes([b0, proto, (flags >> 8) & 0xFF, flags & 0xFF])


def clients():
    pkts = [
        IP(src=CLIENT, dst=VIP, id=1, flags="DF", ttl=64)
        / TCP(sport=40000, dport=80, seq=1000, flags="S", window=64240,
              options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]),
        IP(src=CLIENT, dst=VIP, id=2, flags="DF", ttl=63, tos=0x10)
        / TCP(sport=40001, dport=80, seq=5, ack=77, flags="PA") / Raw(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
        IP(src="198.18.0.102", dst=VIP, id=3, ttl=1) / TCP(sport=65535, dport=80, seq=0xFFFFFFFF, ack=1, flags="FA"),
        IP(src=CLIENT, dst=VIP, id=4, tos=0xB8, options=[IPOption_Router_Alert()])
        / TCP(sport=1, dport=80, flags="A") / Raw(bytes(range(256)) * 5),
        IP(src=CLIENT, dst=VIP, id=5, flags="DF") / TCP(sport=2, dport=80, flags="A") / Raw(b"x"),
    ]
    return {"clients": [bytes(p).hex() for p in pkts]}


def encap(cases):
    out = []
    for c in cases:
        inner = bytes.fromhex(c["inner"])
        payload = (gue_header() if c["variant"] == 0 else b"") + inner
        udp = UDP(sport=c["sport"], dport=c["dport"])
        if not c["csum"]:
            udp.chksum = 0
        p = IP(src=c["src"], dst=c["dst"], id=c["id"], ttl=c["ttl"], tos=c["tos"], flags=0) / udp / Raw(payload)
        out.append(bytes(p).hex())
    return {"outer": out}


def payloads():
    inner = bytes(IP(src=CLIENT, dst=VIP, id=9, flags="DF") / TCP(sport=1234, dport=80, flags="S"))
    p = []

    def add(name, data, inner_bytes=None, error=None):
        p.append({"name": name, "hex": data.hex(), "inner": inner_bytes.hex() if inner_bytes else None,
                  "error": error})

    add("variant 0", gue_header() + inner, inner)
    add("variant 0 with flags set", gue_header(flags=0x8000) + inner, inner)
    add("variant 0 with 8 bytes of extension fields", gue_header(hlen=2) + bytes(8) + inner, inner)
    add("variant 1 (bare IPv4)", inner, inner)
    add("control message", gue_header(control=True, proto=0) + bytes(8), None, "gue-control")
    add("inner protocol 41 (IPv6)", gue_header(proto=41) + inner, None, "unsupported")
    add("GUE version 2", gue_header(version=2) + inner, None, "bad-version")
    add("header longer than the datagram", gue_header(hlen=31) + inner[:20], None, "truncated")
    add("empty", b"", None, "truncated")
    add("variant 0 with a truncated inner packet", gue_header() + inner[:30], None, "truncated")
    add("variant 0 with a bad inner IPv4 checksum",
        gue_header() + inner[:10] + bytes([inner[10] ^ 0xFF]) + inner[11:], None, "bad-checksum")
    return {"payloads": p}


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "clients":
        result = clients()
    elif mode == "encap":
        result = encap(json.load(sys.stdin))
    elif mode == "payloads":
        result = payloads()
    else:
        sys.exit("usage: gue_reference.py clients | encap < cases.json | payloads")
    json.dump(result, sys.stdout)
