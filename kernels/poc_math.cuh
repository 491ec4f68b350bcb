// The PoC's seeded random numbers on the device, bit for bit the C# reference: murmur3 (no length step),
// uniforms, and Box–Muller normals with the portable float32 log and sin/cos of
// src/MLNode.Protocol/Poc/PortableMath.cs and the operation order of PocRandom.cs.
//
// Every floating-point operation is an explicitly rounded intrinsic (__fadd_rn, __fmul_rn, __fmaf_rn, …):
// nvcc contracts a*b+c into an fma by default and may pick approximate paths for plain operators, either of
// which would change bits. No intermediate value is subnormal on the domains used here, so flush-to-zero
// settings do not matter either.
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

namespace mlnode::poc {

__device__ __forceinline__ uint32_t rotate_left(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

// MurmurHash3 x86_32 body for one block and its finaliser, without the `h ^= length` step (Murmur3.cs).
__device__ __forceinline__ uint32_t mix(uint32_t key, uint32_t seed) {
  uint32_t k = key * 0xCC9E2D51u;
  k = rotate_left(k, 15);
  k *= 0x1B873593u;
  uint32_t h = seed ^ k;
  h = rotate_left(h, 13);
  h = h * 5u + 0xE6546B64u;
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

// float32(mix(index, seed)) / 2^32: the hash is rounded to float first; scaling by 2^-32 is exact.
__device__ __forceinline__ float uniform(uint32_t seed, uint32_t index) {
  return __fmul_rn(__uint2float_rn(mix(index, seed)), 0x1p-32f);
}

// a + b = sum + error exactly (Knuth's two-sum).
__device__ __forceinline__ void two_sum(float a, float b, float& sum, float& error) {
  sum = __fadd_rn(a, b);
  const float b_part = __fsub_rn(sum, a);
  const float a_part = __fsub_rn(sum, b_part);
  error = __fadd_rn(__fsub_rn(a, a_part), __fsub_rn(b, b_part));
}

// PortableMath.Log: natural logarithm of a positive normal float, faithfully rounded.
__device__ __forceinline__ float portable_log(float x) {
  constexpr float kSqrt2 = 1.41421354f;
  constexpr float kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;
  constexpr float kR1 = 0.666666687f, kR2 = 0.400000006f, kR3 = 0.285714298f, kR4 = 0.222222224f;

  const int bits = __float_as_int(x);
  int e = (bits >> 23) - 127;
  float m = __int_as_float((bits & 0x007FFFFF) | 0x3F800000);
  if (m > kSqrt2) {
    m = __fmul_rn(m, 0.5f);
    e += 1;
  }
  const float f = __fsub_rn(m, 1.0f);

  const float s = __fdiv_rn(f, __fadd_rn(2.0f, f));
  const float z = __fmul_rn(s, s);
  const float r = __fmul_rn(z, __fmaf_rn(z, __fmaf_rn(z, __fmaf_rn(z, kR4, kR3), kR2), kR1));
  const float half_f = __fmul_rn(0.5f, f);
  const float half_square = __fmul_rn(half_f, f);
  const float half_square_error = __fmaf_rn(half_f, f, -half_square);
  const float lead = __fsub_rn(f, half_square);
  const float lead_error = __fsub_rn(__fsub_rn(f, lead), half_square);
  const float ef = __int2float_rn(e);
  float sum, sum_error;
  two_sum(__fmul_rn(ef, kLn2Hi), lead, sum, sum_error);
  const float small = __fadd_rn(__fsub_rn(__fadd_rn(__fmul_rn(ef, kLn2Lo), lead_error), half_square_error),
                                __fmul_rn(s, __fadd_rn(half_square, r)));
  return __fadd_rn(sum, __fadd_rn(sum_error, small));
}

// PortableMath.SinCos: sin and cos of an angle in [0, 6.2831855], faithfully rounded.
__device__ __forceinline__ void portable_sincos(float angle, float& sin_out, float& cos_out) {
  constexpr float kTwoOverPi = 0.636619747f;
  constexpr float kPiOver2A = 1.57079637f, kPiOver2B = -4.37113883e-8f, kPiOver2C = -1.71512451e-15f;
  constexpr float kS1 = -0.166666672f, kS2 = 8.33333377e-3f, kS3 = -1.98412701e-4f, kS4 = 2.75573188e-6f;
  constexpr float kC1 = 4.16666679e-2f, kC2 = -1.38888892e-3f, kC3 = 2.48015876e-5f, kC4 = -2.75573200e-7f;

  const float k = rintf(__fmul_rn(angle, kTwoOverPi));
  const float reduced = __fmaf_rn(-k, kPiOver2A, angle);
  const float product = __fmul_rn(k, kPiOver2B);
  const float product_error = __fmaf_rn(k, kPiOver2B, -product);
  float hi, sum_error;
  two_sum(reduced, -product, hi, sum_error);
  const float lo = __fsub_rn(__fsub_rn(sum_error, product_error), __fmul_rn(k, kPiOver2C));

  const float z = __fmul_rn(hi, hi);
  const float sin_poly = __fmaf_rn(z, __fmaf_rn(z, __fmaf_rn(z, kS4, kS3), kS2), kS1);
  const float sin_r = __fadd_rn(hi, __fmaf_rn(__fmul_rn(hi, z), sin_poly, lo));

  const float z_error = __fmaf_rn(hi, hi, -z);
  const float half_z = __fmul_rn(0.5f, z);
  const float w = __fsub_rn(1.0f, half_z);
  const float w_error = __fsub_rn(__fsub_rn(1.0f, w), half_z);
  const float cos_poly = __fmaf_rn(z, __fmaf_rn(z, __fmaf_rn(z, kC4, kC3), kC2), kC1);
  const float tail = __fmaf_rn(__fmul_rn(z, z), cos_poly, -__fmaf_rn(hi, lo, __fmul_rn(0.5f, z_error)));
  const float cos_r = __fadd_rn(w, __fadd_rn(w_error, tail));

  switch (static_cast<int>(k) & 3) {
    case 0: sin_out = sin_r; cos_out = cos_r; break;
    case 1: sin_out = cos_r; cos_out = -sin_r; break;
    case 2: sin_out = -sin_r; cos_out = -cos_r; break;
    default: sin_out = -cos_r; cos_out = sin_r; break;
  }
}

// Pair j of normal(seed, N) with P = ceil(N/2) pairs (PocRandom.FillNormalPairs): element j is the cosine
// value, element P + j the sine value.
__device__ __forceinline__ void box_muller(uint32_t seed, uint32_t j, uint32_t pairs, float& cosine, float& sine) {
  const float u1 = fmaxf(uniform(seed, j), 1e-10f);
  const float u2 = uniform(seed, pairs + j);
  const float radius = __fsqrt_rn(__fmul_rn(-2.0f, portable_log(u1)));
  float sin_angle, cos_angle;
  portable_sincos(__fmul_rn(6.2831855f, u2), sin_angle, cos_angle);
  cosine = __fmul_rn(radius, cos_angle);
  sine = __fmul_rn(radius, sin_angle);
}

}  // namespace mlnode::poc
