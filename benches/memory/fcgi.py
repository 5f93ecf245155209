"""Helpers shared by the memory measurements in this folder: a process's RSS and the FastCGI
records (header, name-value pairs, a whole GET or POST head) their clients send."""
import struct


def rss(pid):
    """Resident set size of process `pid`, in bytes."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def record(rtype, rid, content):
    """One FastCGI record, padded to 8 bytes."""
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def pair(name, value):
    """One name-value pair with short (1-byte) lengths."""
    return bytes([len(name), len(value)]) + name + value


def request_head(variables, body_follows=False):
    """BEGIN_REQUEST (keep-conn) and the PARAMS of `variables`; with no body, the empty STDIN."""
    params = b"".join(pair(n.encode(), v.encode()) for n, v in variables)
    head = record(1, 1, struct.pack(">HB5x", 1, 1)) + record(4, 1, params) + record(4, 1, b"")
    return head if body_follows else head + record(5, 1, b"")
