// crc64.js — CRC-64/ECMA-182 as OSS computes `x-oss-hash-crc64ecma` and `${crc64}`: the
// reflected ECMA-182 polynomial, init and final xor all ones (the variant also called
// CRC-64/XZ; check value of "123456789": 0x995DC9BBDF1939FA). Values are unsigned decimal
// strings, as OSS writes them. Types in crc64.d.ts.
//
// The byte loop works on two 32-bit halves (BigInt per byte would be ~50 times slower);
// `combine` (zlib's crc32_combine method, in BigInt) joins the CRCs of consecutive pieces, so
// parts hashed out of order still give the whole file's CRC.

const POLY_HI = 0xc96c5795; // 0xC96C5795D7870F42: ECMA-182 reflected
const POLY_LO = 0xd7870f42;
const POLY = 0xc96c5795d7870f42n;
const TOP = 1n << 63n; // x^0 in the reflected representation

const TABLE_HI = new Uint32Array(256);
const TABLE_LO = new Uint32Array(256);
for (let n = 0; n < 256; n += 1) {
  let lo = n;
  let hi = 0;
  for (let k = 0; k < 8; k += 1) {
    const odd = lo & 1;
    lo = (lo >>> 1) | (hi << 31);
    hi >>>= 1;
    if (odd) {
      lo ^= POLY_LO;
      hi ^= POLY_HI;
    }
  }
  TABLE_LO[n] = lo;
  TABLE_HI[n] = hi;
}

/** A running CRC-64: `update(bytes)` as often as needed, then `value` (decimal string). */
export class Crc64 {
  constructor() {
    this.hi = 0;
    this.lo = 0;
  }

  /** @param {Uint8Array} bytes */
  update(bytes) {
    let hi = ~this.hi;
    let lo = ~this.lo;
    for (let i = 0; i < bytes.length; i += 1) {
      const index = (lo ^ bytes[i]) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ TABLE_LO[index];
      hi = (hi >>> 8) ^ TABLE_HI[index];
    }
    this.hi = ~hi >>> 0;
    this.lo = ~lo >>> 0;
    return this;
  }

  get bigint() {
    return (BigInt(this.hi >>> 0) << 32n) | BigInt(this.lo >>> 0);
  }

  get value() {
    return this.bigint.toString();
  }
}

/** The CRC-64 of `bytes` as an unsigned decimal string. */
export function crc64(bytes) {
  return new Crc64().update(bytes).value;
}

/** a(x)·b(x) modulo the polynomial, both reflected (zlib's multmodp, 64 bits wide). */
function multiply(a, b) {
  let m = TOP;
  let product = 0n;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1n)) === 0n) break;
    }
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ POLY : b >> 1n;
  }
  return product;
}

// X2N[k] = x^(2^k) modulo the polynomial.
const X2N = [1n << 62n];
for (let k = 1; k < 64; k += 1) X2N.push(multiply(X2N[k - 1], X2N[k - 1]));

/** x^(n·2^k) modulo the polynomial. */
function xPower(n, k) {
  let p = TOP;
  while (n > 0) {
    if (n % 2 === 1) p = multiply(X2N[k % 64], p);
    n = Math.floor(n / 2);
    k += 1;
  }
  return p;
}

/**
 * The CRC of A followed by B from CRC(A), CRC(B) and B's length in bytes (decimal strings or
 * BigInts in, decimal string out).
 */
export function combine(crcA, crcB, lengthB) {
  const a = BigInt(crcA);
  const b = BigInt(crcB);
  if (!lengthB) return a.toString();
  return (multiply(xPower(lengthB, 3), a) ^ b).toString();
}
