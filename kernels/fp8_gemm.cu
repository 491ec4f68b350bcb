// Block-scaled FP8 E4M3 weights (DeepSeek-V3 / Qwen3-FP8 checkpoints): a weight W [rows, cols] of E4M3 bytes
// and a float32 scale_inv [ceil(rows/block_rows), ceil(cols/block_cols)]; W[r][c] = e4m3(W[r][c]) × scale of its block.
//
// - mlnode_fp8_dequantize: W → bf16/f16/f32 [rows, cols], bit-exact with the C# reference
//   (Fp8BlockDequantizer): the E4M3 → float conversion is exact, times the scale is one fp32 multiply, then one
//   round-to-nearest-even to the output type.
// - mlnode_fp8_linear: y [m, out] = x [m, in] · Wᵀ for decode-sized m (1…kMaxRows), converting W on the fly. It
//   is memory-bound: it streams the FP8 bytes once (half of what a bf16 weight costs) and keeps x in L1/L2.
#include <cuda_fp8.h>
#include <stdint.h>

#include <climits>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Rows of x one fused launch takes; larger batches dequantise into a scratch weight and use the bf16 GEMM.
constexpr int kMaxRows = 16;
// Output features (rows of W) per thread block of the fused GEMM: each x element loaded serves this many.
constexpr int kFeatures = 4;

// Exact E4M3 → float of one byte. With the magnitude bits shifted right by one, E4M3's exponent field (bias 7)
// lands in f16's (bias 15) and its subnormals become f16 subnormals, so that f16 is exactly the E4M3 value × 2⁻⁸;
// f16 → f32 and × 256 are exact too. S.1111.111 is E4M3's NaN (there is no infinity).
__device__ __forceinline__ float e4m3_to_float(uint32_t byte) {
  const uint32_t magnitude = byte & 0x7Fu;
  if (magnitude == 0x7Fu) return __int_as_float(0x7FC00000);
  const unsigned short bits = (unsigned short)(((byte & 0x80u) << 8) | (magnitude << 7));
  return __half2float(__ushort_as_half(bits)) * 256.0f;
}

// The four E4M3 bytes of `bits` (lowest first) as exact floats.
__device__ __forceinline__ void e4m3x4_to_float(uint32_t bits, float* v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Hopper converts byte pairs in one instruction; E4M3 → f16 is exact (f16 has more exponent and mantissa bits).
  const __half2_raw lo = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(bits & 0xFFFFu), __NV_E4M3);
  const __half2_raw hi = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(bits >> 16), __NV_E4M3);
  const float2 a = __half22float2(__half2(lo));
  const float2 b = __half22float2(__half2(hi));
  v[0] = a.x;
  v[1] = a.y;
  v[2] = b.x;
  v[3] = b.y;
#else
  // The header's software conversion loops over subnormals; the bit placement above is branch-free.
#pragma unroll
  for (int i = 0; i < 4; i++) v[i] = e4m3_to_float((bits >> (8 * i)) & 0xFFu);
#endif
}

__device__ __forceinline__ void e4m3x16_to_float(uint4 bits, float* v) {
  e4m3x4_to_float(bits.x, v);
  e4m3x4_to_float(bits.y, v + 4);
  e4m3x4_to_float(bits.z, v + 8);
  e4m3x4_to_float(bits.w, v + 12);
}

// 16 consecutive elements at p (16-byte aligned) as floats.
template <typename T> __device__ __forceinline__ void load16(const T* p, float* v) {
  constexpr int P = mlnode::kPerVector<T>;
#pragma unroll
  for (int i = 0; i < 16 / P; i++) {
    float part[P];
    mlnode::unpack<T>(__ldg(reinterpret_cast<const uint4*>(p) + i), part);
#pragma unroll
    for (int k = 0; k < P; k++) v[P * i + k] = part[k];
  }
}

// Rounds 16 floats to T and stores them at p (16-byte aligned).
template <typename T> __device__ __forceinline__ void store16(T* p, const float* v);
template <> __device__ __forceinline__ void store16(float* p, const float* v) {
#pragma unroll
  for (int i = 0; i < 4; i++)
    reinterpret_cast<float4*>(p)[i] = make_float4(v[4 * i], v[4 * i + 1], v[4 * i + 2], v[4 * i + 3]);
}
template <typename T> __device__ __forceinline__ uint32_t pack2(float a, float b) {
  const T lo = mlnode::from_float<T>(a), hi = mlnode::from_float<T>(b);
  return (uint32_t)(*reinterpret_cast<const unsigned short*>(&lo)) | ((uint32_t)(*reinterpret_cast<const unsigned short*>(&hi)) << 16);
}
template <typename T> __device__ __forceinline__ void store16_2byte(T* p, const float* v) {
#pragma unroll
  for (int i = 0; i < 2; i++)
    reinterpret_cast<uint4*>(p)[i] = make_uint4(pack2<T>(v[8 * i], v[8 * i + 1]), pack2<T>(v[8 * i + 2], v[8 * i + 3]),
                                                pack2<T>(v[8 * i + 4], v[8 * i + 5]), pack2<T>(v[8 * i + 6], v[8 * i + 7]));
}
template <> __device__ __forceinline__ void store16(__half* p, const float* v) { store16_2byte(p, v); }
template <> __device__ __forceinline__ void store16(__nv_bfloat16* p, const float* v) { store16_2byte(p, v); }

// Dequantisation, 16 columns per thread (one 16-byte load): needs cols and block_cols multiples of 16, so that
// a thread's columns share one row and one scale, and 16-byte aligned weight and output.
// blockIdx.y strides over rows (gridDim.y ≤ 65535), blockIdx.x × threads covers the columns.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    dequantize16_kernel(const uint8_t* __restrict__ weight, const float* __restrict__ scale_inv, int rows, int cols,
                        int block_rows, int block_cols, int scale_cols, T* __restrict__ output) {
  const int col = (blockIdx.x * kThreads + threadIdx.x) * 16;
  if (col >= cols) return;
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const long long at = (long long)row * cols + col;
    const uint4 bits = __ldcs(reinterpret_cast<const uint4*>(weight + at));
    const float scale = scale_inv[(row / block_rows) * scale_cols + col / block_cols];
    float v[16];
    e4m3x16_to_float(bits, v);
#pragma unroll
    for (int i = 0; i < 16; i++) v[i] *= scale;
    store16(output + at, v);
  }
}

// Dequantisation of any shape, one element per thread.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    dequantize1_kernel(const uint8_t* __restrict__ weight, const float* __restrict__ scale_inv, int rows, int cols,
                       int block_rows, int block_cols, int scale_cols, T* __restrict__ output) {
  const int col = blockIdx.x * kThreads + threadIdx.x;
  if (col >= cols) return;
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const long long at = (long long)row * cols + col;
    const float scale = scale_inv[(row / block_rows) * scale_cols + col / block_cols];
    output[at] = mlnode::from_float<T>(e4m3_to_float(weight[at]) * scale);
  }
}

// y [m, out] = x [m, in] · Wᵀ with fp32 accumulation. A block computes kFeatures output features for all m rows:
// each thread takes 16 columns per step (16-byte loads of each feature's weight row, coalesced across the
// block), converts them once and multiplies them with the same 16 columns of every row of x. A 16-column
// piece lies in one scale block (block_cols is a multiple of 16), so its partial dot product is scaled once.
// The block's partial sums are reduced in a fixed order (warp shuffles, then the warps in turn): no atomics.
// M is m rounded up to a tile size; rows of the tile beyond m read x's last row and are not stored.
template <typename T, int M>
__global__ void __launch_bounds__(kThreads)
    linear_kernel(const T* __restrict__ x, const uint8_t* __restrict__ weight, const float* __restrict__ scale_inv,
                  int m, int in, int out, int block_rows, int block_cols, int scale_cols, T* __restrict__ y) {
  const int first = blockIdx.x * kFeatures;
  float acc[kFeatures][M];
#pragma unroll
  for (int f = 0; f < kFeatures; f++)
#pragma unroll
    for (int i = 0; i < M; i++) acc[f][i] = 0.0f;

  for (int col = threadIdx.x * 16; col < in; col += kThreads * 16) {
    float w[kFeatures][16];
    float scale[kFeatures];
#pragma unroll
    for (int f = 0; f < kFeatures; f++) {
      const int row = min(first + f, out - 1);  // features past the end compute a copy of the last, never stored
      const uint4 bits = __ldcs(reinterpret_cast<const uint4*>(weight + (long long)row * in + col));
      scale[f] = scale_inv[(row / block_rows) * scale_cols + col / block_cols];
      e4m3x16_to_float(bits, w[f]);
    }
#pragma unroll
    for (int i = 0; i < M; i++) {
      float xv[16];
      load16(x + (long long)min(i, m - 1) * in + col, xv);
#pragma unroll
      for (int f = 0; f < kFeatures; f++) {
        float partial = 0.0f;
#pragma unroll
        for (int k = 0; k < 16; k++) partial = fmaf(w[f][k], xv[k], partial);
        acc[f][i] = fmaf(partial, scale[f], acc[f][i]);
      }
    }
  }

  __shared__ float warp_sums[kWarps][kFeatures * M];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int f = 0; f < kFeatures; f++)
#pragma unroll
    for (int i = 0; i < M; i++) {
      const float v = mlnode::warp_sum(acc[f][i]);
      if (lane == 0) warp_sums[warp][f * M + i] = v;
    }
  __syncthreads();
  for (int k = threadIdx.x; k < kFeatures * M; k += kThreads) {
    const int f = k / M, i = k % M, row = first + f;
    if (row >= out || i >= m) continue;
    float sum = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; w++) sum += warp_sums[w][k];
    y[(long long)i * out + row] = mlnode::from_float<T>(sum);
  }
}


int blocks(long long length, int block_size) { return (int)((length + block_size - 1) / block_size); }

// Arguments both entry points share: shapes that fit the kernels' int indexing and a positive block grid.
mlnode_status check_shape(const char* entry, int64_t rows, int64_t cols, int32_t block_rows, int32_t block_cols) {
  if (rows < 0 || rows > INT_MAX) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: rows %lld is outside [0, %d]", entry, (long long)rows, INT_MAX);
  if (cols < 0 || cols > INT_MAX) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: cols %lld is outside [0, %d]", entry, (long long)cols, INT_MAX);
  if (block_rows <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: block_rows %d is not positive", entry, block_rows);
  if (block_cols <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: block_cols %d is not positive", entry, block_cols);
  return MLNODE_OK;
}

}  // namespace

// output [rows, cols] (output_dtype: F32, F16 or BF16) = E4M3 weight [rows, cols] × its block's scale_inv
// [ceil(rows/block_rows), ceil(cols/block_cols)] (float32), bit-exact with Fp8BlockDequantizer.
MLNODE_API mlnode_status mlnode_fp8_dequantize(const void* weight, const void* scale_inv, int64_t rows, int64_t cols,
                                               int32_t block_rows, int32_t block_cols, void* output,
                                               int32_t output_dtype, void* stream) {
  const char* entry = "mlnode_fp8_dequantize";
  if (weight == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is null", entry);
  if (scale_inv == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scale_inv is null", entry);
  if (output == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: output is null", entry);
  if (mlnode_status status = check_shape(entry, rows, cols, block_rows, block_cols); status != MLNODE_OK) return status;
  if (rows == 0 || cols == 0) return MLNODE_OK;

  const int scale_cols = blocks(cols, block_cols);
  const bool by16 = cols % 16 == 0 && block_cols % 16 == 0 && mlnode::aligned16(weight) && mlnode::aligned16(output);
  const dim3 grid(blocks(by16 ? cols / 16 : cols, kThreads), (unsigned)(rows < 65535 ? rows : 65535));
  return mlnode::dispatch_float((mlnode_dtype)output_dtype, entry, [&](auto zero) {
    using T = decltype(zero);
    const auto* bits = static_cast<const uint8_t*>(weight);
    const auto* scales = static_cast<const float*>(scale_inv);
    if (by16)
      dequantize16_kernel<T><<<grid, kThreads, 0, (cudaStream_t)stream>>>(
          bits, scales, (int)rows, (int)cols, block_rows, block_cols, scale_cols, static_cast<T*>(output));
    else
      dequantize1_kernel<T><<<grid, kThreads, 0, (cudaStream_t)stream>>>(
          bits, scales, (int)rows, (int)cols, block_rows, block_cols, scale_cols, static_cast<T*>(output));
    return mlnode::check_launch(entry);
  });
}

// The most rows of x mlnode_fp8_linear takes in one call.
MLNODE_API int32_t mlnode_fp8_linear_max_rows(void) { return kMaxRows; }

// y [m, out_features] = x [m, in_features] · Wᵀ, W the E4M3 weight [out_features, in_features] with its block
// scale_inv as above; x and y of `dtype` (F32, F16 or BF16), fp32 accumulation, one rounding to dtype.
// Needs 1 ≤ m ≤ mlnode_fp8_linear_max_rows(), in_features and block_cols multiples of 16, and x and weight
// 16-byte aligned.
MLNODE_API mlnode_status mlnode_fp8_linear(const void* x, const void* weight, const void* scale_inv, int64_t m,
                                           int64_t in_features, int64_t out_features, int32_t block_rows,
                                           int32_t block_cols, void* y, int32_t dtype, void* stream) {
  const char* entry = "mlnode_fp8_linear";
  if (x == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x is null", entry);
  if (weight == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is null", entry);
  if (scale_inv == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scale_inv is null", entry);
  if (y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: y is null", entry);
  if (mlnode_status status = check_shape(entry, out_features, in_features, block_rows, block_cols); status != MLNODE_OK)
    return status;
  if (m < 1 || m > kMaxRows) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: m %lld is outside [1, %d]", entry, (long long)m, kMaxRows);
  if (in_features == 0 || out_features == 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: in_features %lld and out_features %lld must be positive", entry,
                        (long long)in_features, (long long)out_features);
  if (in_features % 16 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: in_features %lld is not a multiple of 16", entry, (long long)in_features);
  if (block_cols % 16 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: block_cols %d is not a multiple of 16", entry, block_cols);
  if (!mlnode::aligned16(x)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x is not 16-byte aligned", entry);
  if (!mlnode::aligned16(weight)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is not 16-byte aligned", entry);

  const int rows = (int)m, in = (int)in_features, out = (int)out_features;
  const int scale_cols = blocks(in, block_cols);
  const int grid = blocks(out, kFeatures);
  return mlnode::dispatch_float((mlnode_dtype)dtype, entry, [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* bits = static_cast<const uint8_t*>(weight);
    const auto* scales = static_cast<const float*>(scale_inv);
    auto* ys = static_cast<T*>(y);
    const auto launch = [&](auto kernel) {
      kernel<<<grid, kThreads, 0, (cudaStream_t)stream>>>(xs, bits, scales, rows, in, out, block_rows, block_cols, scale_cols, ys);
      return mlnode::check_launch(entry);
    };
    if (rows <= 1) return launch(linear_kernel<T, 1>);
    if (rows <= 2) return launch(linear_kernel<T, 2>);
    if (rows <= 4) return launch(linear_kernel<T, 4>);
    if (rows <= 8) return launch(linear_kernel<T, 8>);
    return launch(linear_kernel<T, 16>);
  });
}
