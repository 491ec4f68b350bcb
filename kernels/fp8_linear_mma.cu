// y [m, out] = x [m, in] · Wᵀ for block-scaled FP8 E4M3 weights and 1 ≤ m ≤ 64 rows of bf16/f16 x, on the tensor
// cores (mma.sync m16n8k16, sm_80+), reading each weight byte once. The sibling of fp8_gemm.cu's CUDA-core fused
// kernel, with the same numerics: W's E4M3 values enter exactly (every E4M3 value is a bf16 and an f16), each 128-wide
// block of the k sum is accumulated in float32 and then multiplied by its scale_inv and added into the output
// accumulator with one fmaf, and the result is rounded once to x's type.
//
// It computes yᵀ = W · xᵀ: W is the mma's A operand (16 output features per mma), x its B operand (8 rows of x per
// n-tile), so m pads only to a multiple of 8 and the large, streamed operand is the one an mma consumes 16 rows of.
// A block owns 128 output features (4 warps × 32) and a range of 128-column k blocks; each ring stage of shared
// memory holds one k block: the W tile [128 features × 128 bytes] and the x tile [M rows × 128] in x's type, both
// copied with cp.async. When the output tiles alone cannot fill the GPU, the k blocks are split over several blocks
// of threads, which write float32 partial sums to a scratch buffer that a second launch adds in split order: no
// atomics, so the same inputs give the same bits on the same GPU.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#include <algorithm>
#include <climits>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
// Output features per warp: two 16-row A tiles share every B fragment, which halves the shared-memory reads of x
// (each warp reads all of x's tile once per stage) against one tile per warp; at 64 rows those reads would otherwise
// outweigh the W tile's.
constexpr int kWarpFeatures = 32;
constexpr int kTileFeatures = kWarps * kWarpFeatures;
// Columns of k per ring stage: one scale block column (block_cols is a multiple of it).
constexpr int kBlockK = 128;
constexpr int kMaxRows = 64;
// Blocks of threads per SM the grid is sized for (the ring fits twice in an H100's shared memory at every M).
constexpr int kBlocksPerSm = 2;
// At most this share of the weight's bytes goes to float32 partial sums (written once, read once by the reduction):
// more splits fill more SMs but spend bandwidth on partials.
constexpr int kPartialShareDenominator = 2;

// Ring depth: two to three k blocks in flight per block of threads, four at M = 64 would not fit two blocks per SM.
template <int M> constexpr int kStages = M == 64 ? 3 : 4;
template <int M> constexpr int kStageBytes = kTileFeatures * kBlockK + M * kBlockK * 2;
template <int M> constexpr int kSharedBytes = kStages<M> * kStageBytes<M>;

// ---- E4M3 pairs → the mma's 16-bit operand types, exact ----------------------------------------------------------

// The E4M3 bytes in bits 0..7 and 8..15 of `pair` as an f16x2 (byte 0 in the low half).
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t pair) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  uint32_t h;
  asm("{\n .reg .b16 p;\n cvt.u16.u32 p, %1;\n cvt.rn.f16x2.e4m3x2 %0, p;\n}" : "=r"(h) : "r"(pair));
  return h;
#else
  // Each byte b in the high byte of its half (b << 8): with the magnitude shifted right by one, E4M3's exponent
  // (bias 7) lands in f16's (bias 15) and its subnormals become f16 subnormals, so the half is the E4M3 value × 2⁻⁸;
  // × 256 is exact (f16 arithmetic keeps subnormal inputs). S.1111.111 is E4M3's NaN.
  const uint32_t high = __byte_perm(pair, 0, 0x1404);
  const uint32_t scaled = (high & 0x80008000u) | ((high >> 1) & 0x3F803F80u);
  __half2 v = __hmul2(*reinterpret_cast<const __half2*>(&scaled), __half2(__half(256.0f), __half(256.0f)));
  const uint32_t nan = __vcmpeq2(high & 0x7F007F00u, 0x7F007F00u);
  return *reinterpret_cast<const uint32_t*>(&v) | (nan & 0x7E007E00u);
#endif
}

// An f16x2 of E4M3 values as a bf16x2. Every non-zero E4M3 value is an f16 normal, so dropping f16's three low
// mantissa bits (zero: E4M3 has three) keeps the value in bf16's layout with f16's exponent bias 15 instead of 127,
// i.e. × 2⁻¹¹²: a bf16 normal, which the multiplication by 2¹¹² restores exactly. An f16 NaN (exponent 31) comes out
// with exponent 31 + 112 = 0x8F; OR-ing in the f16 comparison's 1.0 (0x3C00) shifted left by one sets the exponent's
// high four bits, 0xFF: NaN again (its mantissa, f16's top seven, is non-zero).
__device__ __forceinline__ uint32_t f16x2_to_bf16x2(uint32_t h) {
  const uint32_t shifted = (h & 0x80008000u) | ((h >> 3) & 0x0FFF0FFFu);
  const uint32_t scale_bits = 0x77807780u;  // 2¹¹² in both halves (exponent field 127 + 112)
  __nv_bfloat162 v = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&shifted), *reinterpret_cast<const __nv_bfloat162*>(&scale_bits));
  uint32_t nan;  // 1.0 (0x3C00) in each half that is NaN, else 0
  asm("set.nan.f16x2.f16x2 %0, %1, %1;" : "=r"(nan) : "r"(h));
  return *reinterpret_cast<const uint32_t*>(&v) | (nan << 1);
}

template <typename T> __device__ __forceinline__ uint32_t e4m3x2_to(uint32_t pair);
template <> __device__ __forceinline__ uint32_t e4m3x2_to<__half>(uint32_t pair) { return e4m3x2_to_f16x2(pair); }
template <> __device__ __forceinline__ uint32_t e4m3x2_to<__nv_bfloat16>(uint32_t pair) {
  return f16x2_to_bf16x2(e4m3x2_to_f16x2(pair));
}

// c += a · b for one m16n8k16 tile, float32 accumulation.
template <typename T> __device__ __forceinline__ void mma(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <> __device__ __forceinline__ void mma<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <> __device__ __forceinline__ void mma<__half>(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- Fragment layout ---------------------------------------------------------------------------------------------
//
// m16n8k16 with g = lane / 4, t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16"):
//   A (16×16): a0 = (row g, k 2t..2t+1), a1 = (row g+8, k 2t..2t+1), a2 = (row g, k 2t+8..9), a3 = (row g+8, k 2t+8..9)
//   B (16×8):  b0 = (k 2t..2t+1, col g), b1 = (k 2t+8..9, col g)
//   C (16×8):  c0, c1 = (row g, cols 2t, 2t+1), c2, c3 = (row g+8, cols 2t, 2t+1)
// A dot product does not care in which order k runs, as long as A and B agree. So instead of the ISA's k order,
// lane (g, t) takes the 16 consecutive bytes 16t..16t+15 of a 64-column half of W's rows g and g+8 (one 16-byte
// shared load each, no byte shuffling) and the same 16 columns of x's row g (two 16-byte loads). Those 16 columns
// serve 4 mmas: mma j's "k 2t, 2t+1" are columns 16t + 4j + {0, 1} and its "k 2t+8, 2t+9" are 16t + 4j + {2, 3},
// i.e. word j of the lane's W bytes gives a0/a1 (low byte pair) and a2/a3 (high pair), words 2j and 2j+1 of its x
// elements give b0 and b1. Over t = 0..3 and j = 0..3 that covers each of the 64 columns exactly once.
// Rows of A are output features (yᵀ = W·xᵀ), columns of B and C are rows of x: c0..c3 of a lane are
// y[2t][feature g], y[2t+1][feature g], y[2t][feature g+8], y[2t+1][feature g+8] of its tile.
//
// Shared memory, per stage: W tile [128 rows][128 bytes], x tile [M rows][128 elements = 256 bytes], both in
// 16-byte chunks. A 16-byte load is served a quarter warp at a time: 8 lanes = rows g, g+1 × t = 0..3. W's 64-byte
// half rows would then hit the same banks in rows g and g+1, so chunk c of W row r is stored at c ^ 4·(r & 1), moving
// odd rows' halves to the other 64 bytes; x's lanes read chunks 2t (then 2t+1) of a half, so chunk c of x row r is
// stored at c ^ (r & 1), putting odd rows on the odd chunks. Both make every 16-byte load conflict-free.

template <typename T, int M>
__device__ __forceinline__ void load_stage(uint8_t* stage, const uint8_t* __restrict__ weight, const T* __restrict__ x,
                                           int m, int in, int out, int first_feature, int kb) {
  uint8_t* w_tile = stage;
  uint8_t* x_tile = stage + kTileFeatures * kBlockK;
  const long long column = (long long)kb * kBlockK;
#pragma unroll
  for (int i = threadIdx.x; i < kTileFeatures * 8; i += kThreads) {
    const int row = i / 8, chunk = i % 8;
    const int feature = min(first_feature + row, out - 1);  // rows past the end copy the last, never stored
    mlnode::cp_async16(w_tile + row * kBlockK + (chunk ^ ((row & 1) << 2)) * 16, weight + (long long)feature * in + column + chunk * 16);
  }
#pragma unroll
  for (int i = threadIdx.x; i < M * 16; i += kThreads) {
    const int row = i / 16, chunk = i % 16;
    const int source = min(row, m - 1);  // rows past m copy the last, never stored
    mlnode::cp_async16(x_tile + row * 256 + (chunk ^ (row & 1)) * 16, x + (long long)source * in + column + chunk * 8);
  }
}

// One block of threads: output features [first_feature, +128) over k blocks [kb_begin, kb_end). With splits == 1 it
// writes y; otherwise float32 partial sums into partials [split][m][out].
template <typename T, int M>
__global__ void __launch_bounds__(kThreads, kBlocksPerSm)
    linear_mma_kernel(const T* __restrict__ x, const uint8_t* __restrict__ weight, const float* __restrict__ scale_inv,
                      int m, int in, int out, int block_rows, int block_cols, int scale_cols, int kblocks, int splits,
                      T* __restrict__ y, float* __restrict__ partials) {
  constexpr int NT = M / 8;  // n-tiles of 8 rows of x
  constexpr int S = kStages<M>;
  extern __shared__ __align__(16) uint8_t shared[];

  const int first_feature = blockIdx.x * kTileFeatures;
  const int split = blockIdx.y;
  const int kb_begin = (int)((long long)kblocks * split / splits), kb_end = (int)((long long)kblocks * (split + 1) / splits);
  const int count = kb_end - kb_begin;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;

  // The scale row of this lane's four features (A tile a, row g or g + 8).
  int scale_row[2][2];
#pragma unroll
  for (int a = 0; a < 2; a++)
#pragma unroll
    for (int h = 0; h < 2; h++)
      scale_row[a][h] = min(first_feature + warp * kWarpFeatures + 16 * a + 8 * h + g, out - 1) / block_rows * scale_cols;
  const int blocks_per_scale = block_cols / kBlockK;

  float acc[2][NT][4];
#pragma unroll
  for (int a = 0; a < 2; a++)
#pragma unroll
    for (int n = 0; n < NT; n++)
#pragma unroll
      for (int i = 0; i < 4; i++) acc[a][n][i] = 0.0f;

  // Every thread commits one group per stage, empty ones included, so wait_group<S - 2> always means "stage i landed".
#pragma unroll
  for (int s = 0; s < S - 1; s++) {
    if (s < count) load_stage<T, M>(shared + s * kStageBytes<M>, weight, x, m, in, out, first_feature, kb_begin + s);
    mlnode::cp_async_commit();
  }

  for (int i = 0; i < count; i++) {
    mlnode::cp_async_wait<S - 2>();
    __syncthreads();  // stage i is visible to all, and everyone is done with stage i - 1, which the next copy refills
    if (i + S - 1 < count)
      load_stage<T, M>(shared + (i + S - 1) % S * kStageBytes<M>, weight, x, m, in, out, first_feature, kb_begin + i + S - 1);
    mlnode::cp_async_commit();

    const int kb = kb_begin + i;
    float scale[2][2];  // loaded now, used after the mmas, which hide the latency
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
      for (int h = 0; h < 2; h++) scale[a][h] = __ldg(scale_inv + scale_row[a][h] + kb / blocks_per_scale);

    const uint8_t* w_tile = shared + i % S * kStageBytes<M>;
    const uint8_t* x_tile = w_tile + kTileFeatures * kBlockK;
    float block_sum[2][NT][4];
#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
      for (int n = 0; n < NT; n++)
#pragma unroll
        for (int k = 0; k < 4; k++) block_sum[a][n][k] = 0.0f;

#pragma unroll
    for (int half = 0; half < 2; half++) {
      uint32_t a_frag[2][4][4];  // [A tile][mma j][a0..a3]
#pragma unroll
      for (int a = 0; a < 2; a++) {
        const int row = warp * kWarpFeatures + 16 * a + g;  // row + 8 has the same parity, so the same swizzle
        const int chunk = (4 * half + t) ^ ((row & 1) << 2);
        const uint4 upper = *reinterpret_cast<const uint4*>(w_tile + row * kBlockK + chunk * 16);
        const uint4 lower = *reinterpret_cast<const uint4*>(w_tile + (row + 8) * kBlockK + chunk * 16);
        const uint32_t up[4] = {upper.x, upper.y, upper.z, upper.w};
        const uint32_t low[4] = {lower.x, lower.y, lower.z, lower.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
          a_frag[a][j][0] = e4m3x2_to<T>(up[j] & 0xFFFFu);
          a_frag[a][j][1] = e4m3x2_to<T>(low[j] & 0xFFFFu);
          a_frag[a][j][2] = e4m3x2_to<T>(up[j] >> 16);
          a_frag[a][j][3] = e4m3x2_to<T>(low[j] >> 16);
        }
      }
#pragma unroll
      for (int n = 0; n < NT; n++) {
        const int row = 8 * n + g;
        const uint8_t* x_row = x_tile + row * 256;
        const uint4 first = *reinterpret_cast<const uint4*>(x_row + ((8 * half + 2 * t) ^ (row & 1)) * 16);
        const uint4 second = *reinterpret_cast<const uint4*>(x_row + ((8 * half + 2 * t + 1) ^ (row & 1)) * 16);
        const uint32_t b[8] = {first.x, first.y, first.z, first.w, second.x, second.y, second.z, second.w};
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
          for (int a = 0; a < 2; a++) mma<T>(block_sum[a][n], a_frag[a][j], b[2 * j], b[2 * j + 1]);
      }
    }

#pragma unroll
    for (int a = 0; a < 2; a++)
#pragma unroll
      for (int n = 0; n < NT; n++)
#pragma unroll
        for (int k = 0; k < 4; k++) acc[a][n][k] = fmaf(block_sum[a][n][k], scale[a][k / 2], acc[a][n][k]);
  }
  mlnode::cp_async_wait<0>();  // no copy may outlive the block (the trailing groups are empty, but say so)

#pragma unroll
  for (int a = 0; a < 2; a++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int feature = first_feature + warp * kWarpFeatures + 16 * a + 8 * h + g;
      if (feature >= out) continue;
#pragma unroll
      for (int n = 0; n < NT; n++)
#pragma unroll
        for (int e = 0; e < 2; e++) {
          const int row = 8 * n + 2 * t + e;
          if (row >= m) continue;
          const float v = acc[a][n][2 * h + e];
          if (splits == 1)
            y[(long long)row * out + feature] = mlnode::from_float<T>(v);
          else
            partials[((long long)split * m + row) * out + feature] = v;
        }
    }
}

// y = the sum of the splits' partials, added in split order (the same order every call), rounded once to T.
template <typename T>
__global__ void __launch_bounds__(256)
    reduce_splits_kernel(const float* __restrict__ partials, int splits, long long count, T* __restrict__ y) {
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (long long)gridDim.x * blockDim.x) {
    float sum = partials[i];
    for (int s = 1; s < splits; s++) sum += partials[s * count + i];
    y[i] = mlnode::from_float<T>(sum);
  }
}

// How one call divides the work: the output tiles, and k split so that the grid stays within the blocks of threads the
// SMs hold at once (kBlocksPerSm each). The kernel is memory-bound and each block keeps two or three k blocks of W in
// flight, so a grid that fits in one wave already saturates HBM with every block finishing together, while one wave
// and a few blocks more would leave those few running alone at a fraction of the bandwidth. Capped by the k blocks
// there are and by kPartialShareDenominator.
struct Plan {
  int tiles, kblocks, splits;
};

mlnode_status plan_for(const char* entry, int m, int in, int out, Plan& plan) {
  int device = 0, sms = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "%s: reading the SM count: %s", entry, cudaGetErrorString(error));
  plan.tiles = (out + kTileFeatures - 1) / kTileFeatures;
  plan.kblocks = in / kBlockK;
  const int fitting = kBlocksPerSm * sms / plan.tiles;
  // partials: splits · m · out · 4 bytes, at most out · in / kPartialShareDenominator
  const int affordable = in / (4 * kPartialShareDenominator * m);
  plan.splits = std::max(1, std::min({fitting, affordable, plan.kblocks}));
  return MLNODE_OK;
}

long long scratch_bytes_for(const Plan& plan, int m, int out) {
  return plan.splits == 1 ? 0 : (long long)plan.splits * m * out * (long long)sizeof(float);
}

// The shapes both entry points take; see mlnode_fp8_linear_mma.
mlnode_status check_shape(const char* entry, int64_t m, int64_t in_features, int64_t out_features) {
  if (m < 1 || m > kMaxRows) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: m %lld is outside [1, %d]", entry, (long long)m, kMaxRows);
  if (in_features <= 0 || in_features > INT_MAX || in_features % kBlockK != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: in_features %lld is not a positive multiple of %d up to %d", entry,
                        (long long)in_features, kBlockK, INT_MAX);
  if (out_features <= 0 || out_features > INT_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: out_features %lld is outside [1, %d]", entry, (long long)out_features, INT_MAX);
  return MLNODE_OK;
}

template <typename T, int M>
mlnode_status launch(const char* entry, const Plan& plan, const T* x, const uint8_t* weight, const float* scale_inv, int m,
                     int in, int out, int block_rows, int block_cols, T* y, float* partials, cudaStream_t stream) {
  constexpr auto kernel = linear_mma_kernel<T, M>;
  int resident = 0;  // also grants the kernel its shared memory beyond 48 KiB, once per device
  if (mlnode_status status = mlnode::resident_blocks<kernel>(entry, kThreads, kSharedBytes<M>, resident); status != MLNODE_OK)
    return status;
  const int scale_cols = (in + block_cols - 1) / block_cols;
  kernel<<<dim3(plan.tiles, plan.splits), kThreads, kSharedBytes<M>, stream>>>(
      x, weight, scale_inv, m, in, out, block_rows, block_cols, scale_cols, plan.kblocks, plan.splits, y, partials);
  if (mlnode_status status = mlnode::check_launch(entry); status != MLNODE_OK || plan.splits == 1) return status;
  const long long count = (long long)m * out;
  const int blocks = (int)std::min<long long>((count + 255) / 256, 65535);
  reduce_splits_kernel<T><<<blocks, 256, 0, stream>>>(partials, plan.splits, count, y);
  return mlnode::check_launch(entry);
}

}  // namespace

// The most rows of x mlnode_fp8_linear_mma takes in one call.
MLNODE_API int32_t mlnode_fp8_linear_mma_max_rows(void) { return kMaxRows; }

// OK when `device` (-1: the current device) runs mlnode_fp8_linear_mma (compute capability 8.0 or newer: mma.sync
// with bf16 and cp.async); MLNODE_UNSUPPORTED with the reason in mlnode_last_error otherwise.
MLNODE_API mlnode_status mlnode_fp8_linear_mma_available(int32_t device) {
  const char* entry = "mlnode_fp8_linear_mma_available";
  cudaError_t error = device < 0 ? cudaGetDevice(&device) : cudaSuccess;
  int major = 0, minor = 0;
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "%s: device %d: %s", entry, device, cudaGetErrorString(error));
  if (major < 8)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: device %d has compute capability %d.%d; the tensor-core FP8 linear needs 8.0",
                        entry, device, major, minor);
  return MLNODE_OK;
}

// The bytes of device memory mlnode_fp8_linear_mma needs as `scratch` for these shapes on the current device (0 when
// it does not split k there).
MLNODE_API mlnode_status mlnode_fp8_linear_mma_scratch_bytes(int64_t m, int64_t in_features, int64_t out_features, int64_t* bytes) {
  const char* entry = "mlnode_fp8_linear_mma_scratch_bytes";
  if (bytes == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: bytes is null", entry);
  if (mlnode_status status = check_shape(entry, m, in_features, out_features); status != MLNODE_OK) return status;
  Plan plan;
  if (mlnode_status status = plan_for(entry, (int)m, (int)in_features, (int)out_features, plan); status != MLNODE_OK) return status;
  *bytes = scratch_bytes_for(plan, (int)m, (int)out_features);
  return MLNODE_OK;
}

// y [m, out_features] = x [m, in_features] · Wᵀ on the tensor cores, W the E4M3 weight [out_features, in_features]
// with its float32 scale_inv [ceil(out_features/block_rows), in_features/block_cols]; x and y of `dtype` (F16 or
// BF16), float32 accumulation per 128-column k block, scaled and summed in float32, one rounding to dtype.
// Needs 1 ≤ m ≤ mlnode_fp8_linear_mma_max_rows(), in_features a multiple of 128, block_cols a multiple of 128, x and
// weight 16-byte aligned, a device mlnode_fp8_linear_mma_available accepts, and `scratch` (4-byte aligned device
// memory) of at least mlnode_fp8_linear_mma_scratch_bytes(m, in_features, out_features) bytes; it may be null when
// that is 0. Runs on the current device, on `stream`.
MLNODE_API mlnode_status mlnode_fp8_linear_mma(const void* x, const void* weight, const void* scale_inv, int64_t m,
                                               int64_t in_features, int64_t out_features, int32_t block_rows,
                                               int32_t block_cols, void* y, int32_t dtype, void* scratch,
                                               int64_t scratch_bytes, void* stream) {
  const char* entry = "mlnode_fp8_linear_mma";
  if (x == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x is null", entry);
  if (weight == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is null", entry);
  if (scale_inv == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scale_inv is null", entry);
  if (y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: y is null", entry);
  if (mlnode_status status = check_shape(entry, m, in_features, out_features); status != MLNODE_OK) return status;
  if (block_rows <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: block_rows %d is not positive", entry, block_rows);
  if (block_cols <= 0 || block_cols % kBlockK != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: block_cols %d is not a positive multiple of %d", entry, block_cols, kBlockK);
  if (!mlnode::aligned16(x)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x is not 16-byte aligned", entry);
  if (!mlnode::aligned16(weight)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is not 16-byte aligned", entry);
  if (dtype != MLNODE_BF16 && dtype != MLNODE_F16)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: element type %d is neither F16 nor BF16", entry, (int)dtype);

  const int rows = (int)m, in = (int)in_features, out = (int)out_features;
  Plan plan;
  if (mlnode_status status = plan_for(entry, rows, in, out, plan); status != MLNODE_OK) return status;
  const long long needed = scratch_bytes_for(plan, rows, out);
  if (needed > 0 && (scratch == nullptr || reinterpret_cast<uintptr_t>(scratch) % 4 != 0))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scratch is null or not 4-byte aligned", entry);
  if (scratch_bytes < needed)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scratch_bytes %lld is below the %lld needed", entry, (long long)scratch_bytes, needed);

  const auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto* xs = static_cast<const T*>(x);
    const auto* bits = static_cast<const uint8_t*>(weight);
    const auto* scales = static_cast<const float*>(scale_inv);
    auto* ys = static_cast<T*>(y);
    auto* partials = static_cast<float*>(scratch);
    const auto s = (cudaStream_t)stream;
    if (rows <= 8) return launch<T, 8>(entry, plan, xs, bits, scales, rows, in, out, block_rows, block_cols, ys, partials, s);
    if (rows <= 16) return launch<T, 16>(entry, plan, xs, bits, scales, rows, in, out, block_rows, block_cols, ys, partials, s);
    if (rows <= 32) return launch<T, 32>(entry, plan, xs, bits, scales, rows, in, out, block_rows, block_cols, ys, partials, s);
    return launch<T, 64>(entry, plan, xs, bits, scales, rows, in, out, block_rows, block_cols, ys, partials, s);
  };
  return dtype == MLNODE_BF16 ? run(__nv_bfloat16{}) : run(__half{});
}
