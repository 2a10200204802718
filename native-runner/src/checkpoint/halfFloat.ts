/** IEEE half (float16) and bfloat16 <-> float32, bit-exact, rounding to nearest even like torch. */

export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) {
      // Zero or subnormal: mantissa * 2^-24 is exact in float32, and keeps -0.
      out[i] = (sign ? -1 : 1) * mantissa * 2 ** -24;
    } else if (exponent === 0x1f) {
      outBits[i] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    } else {
      outBits[i] = (sign | ((exponent + 127 - 15) << 23) | (mantissa << 13)) >>> 0;
    }
  }
  return out;
}

export function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = (bits[i] << 16) >>> 0;
  return out;
}

export function float32ToFloat16(values: Float32Array): Uint16Array {
  const inBits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32BitsToFloat16(inBits[i]);
  return out;
}

function float32BitsToFloat16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Keep NaN a NaN even when its payload lives only in the low 13 bits that get dropped.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) return sign | float32ToSubnormalHalf(mantissa, halfExponent);
  // A carry out of the mantissa bumps the exponent, and into infinity past 65504: both are right.
  return sign | roundShiftRightEven((halfExponent << 23) | mantissa, 13);
}

/** Half subnormals are multiples of 2^-24; values under half of that round to zero. */
function float32ToSubnormalHalf(mantissa: number, halfExponent: number): number {
  if (halfExponent < -10) return 0;
  return roundShiftRightEven(mantissa | 0x800000, 14 - halfExponent);
}

function roundShiftRightEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

export function float32ToBfloat16(values: Float32Array): Uint16Array {
  const inBits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = inBits[i];
    const isNaN = (x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0;
    // Rounding a NaN could carry it into infinity, so quiet it instead, as torch does.
    out[i] = isNaN ? (x >>> 16) | 0x0040 : roundShiftRightEven(x, 16);
  }
  return out;
}
