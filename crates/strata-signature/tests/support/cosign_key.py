#!/usr/bin/env python3
"""Writes a cosign encrypted private key (tests only), independently of strata's Rust decryption.

cosign_key.py PKCS8_DER_FILE PASSPHRASE OUTPUT_PEM [PEM_LABEL] [LOG2_N]

The key is scrypt(passphrase, salt) from Python's hashlib; the box is NaCl secretbox
(XSalsa20-Poly1305), written here in pure Python from the Salsa20 and Poly1305 definitions, so the Rust
side (RustCrypto's crypto_secretbox) is checked against a second implementation. Format: go-securesystemslib
`encrypted`, as cosign writes it.
"""
import base64
import hashlib
import json
import os
import struct
import sys

M = 0xFFFFFFFF


def rotl(v, c):
    return ((v << c) & M) | (v >> (32 - c))


def quarter(x, a, b, c, d):
    x[b] ^= rotl((x[a] + x[d]) & M, 7)
    x[c] ^= rotl((x[b] + x[a]) & M, 9)
    x[d] ^= rotl((x[c] + x[b]) & M, 13)
    x[a] ^= rotl((x[d] + x[c]) & M, 18)


def rounds(state):
    x = list(state)
    for _ in range(10):
        quarter(x, 0, 4, 8, 12)
        quarter(x, 5, 9, 13, 1)
        quarter(x, 10, 14, 2, 6)
        quarter(x, 15, 3, 7, 11)
        quarter(x, 0, 1, 2, 3)
        quarter(x, 5, 6, 7, 4)
        quarter(x, 10, 11, 8, 9)
        quarter(x, 15, 12, 13, 14)
    return x


SIGMA = struct.unpack("<4I", b"expand 32-byte k")


def state(key, in16):
    k = struct.unpack("<8I", key)
    i = struct.unpack("<4I", in16)
    return [SIGMA[0], k[0], k[1], k[2], k[3], SIGMA[1], i[0], i[1],
            i[2], i[3], SIGMA[2], k[4], k[5], k[6], k[7], SIGMA[3]]


def hsalsa20(key, nonce16):
    x = rounds(state(key, nonce16))
    return struct.pack("<8I", x[0], x[5], x[10], x[15], x[6], x[7], x[8], x[9])


def salsa20_stream(key, nonce8, length):
    out = b""
    counter = 0
    while len(out) < length:
        s = state(key, nonce8 + struct.pack("<Q", counter))
        x = rounds(s)
        out += struct.pack("<16I", *[(a + b) & M for a, b in zip(x, s)])
        counter += 1
    return out[:length]


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:32], "little")
    p = (1 << 130) - 5
    acc = 0
    for i in range(0, len(msg), 16):
        n = int.from_bytes(msg[i:i + 16] + b"\x01", "little")
        acc = (acc + n) * r % p
    return ((acc + s) % (1 << 128)).to_bytes(16, "little")


def secretbox(key, nonce, msg):
    subkey = hsalsa20(key, nonce[:16])
    stream = salsa20_stream(subkey, nonce[16:], 32 + len(msg))
    ct = bytes(a ^ b for a, b in zip(msg, stream[32:]))
    return poly1305(stream[:32], ct) + ct


def main():
    der_path, passphrase, out_path = sys.argv[1:4]
    label = sys.argv[4] if len(sys.argv) > 4 else "ENCRYPTED COSIGN PRIVATE KEY"
    log_n = int(sys.argv[5]) if len(sys.argv) > 5 else 15
    der = open(der_path, "rb").read()
    salt = os.urandom(32)
    nonce = os.urandom(24)
    key = hashlib.scrypt(passphrase.encode(), salt=salt, n=1 << log_n, r=8, p=1, maxmem=256 << 20, dklen=32)
    body = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": 1 << log_n, "r": 8, "p": 1},
                "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(secretbox(key, nonce, der)).decode(),
    }, separators=(",", ":")).encode()
    b64 = base64.b64encode(body).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    with open(out_path, "w") as f:
        f.write(f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n")


if __name__ == "__main__":
    main()
