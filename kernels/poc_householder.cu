// The PoC's per-layer structure breaking H x = x − 2 (x·v) v, in place, on every row of the hidden state and
// (optionally) of the residual, in one launch that reads and writes each element once.
//
// The rounding is libtorch's for the reference hook's expression `h - 2 * matmul(h, v).unsqueeze(-1) * v` in
// the activation dtype: the dot accumulated in float32 and rounded to the dtype, doubled (exact), each
// product 2·dot·v_i rounded to the dtype, the difference rounded to the dtype. Only the order of the dot's
// float32 sum can differ from cuBLAS's; here it is fixed (per-thread strided sums, then a butterfly over
// each warp and over the warps), so the same row always gives the same bits.
//
// Rows of up to kMaxPacksPerThread · kThreads accesses (8192 bf16/f16 or 4096 f32 elements when rows start on
// 16 bytes) take the streaming kernel: a grid of as many blocks as the GPU holds at once, each looping over rows
// with the next row's loads in flight while it reduces and writes the current one from registers, v coming
// from L1. (One block per row stalls each block on its loads, its reduction and its stores in
// turn.) Longer rows take one block per row with the row kept in shared memory. Both sum the dot in the same
// order, so the kernel chosen does not change the bits.
#include <limits.h>
#include <stdint.h>

#include <algorithm>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kDefaultSharedBytes = 48 * 1024;
constexpr int kMaxPacksPerThread = 4;

// N consecutive elements moved as one access (16 bytes when the row allows it).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T>
__device__ __forceinline__ float to_float(T value) {
  return mlnode::load_float(&value, 0);
}

// The row's dot from the warps' sums: warp 0's butterfly over them, lanes past the warps adding zeros.
// Warp-collective, so every warp can take it after one barrier; every lane of every warp gets the same bits.
__device__ __forceinline__ float block_dot(const float (&warp_sums)[kWarps]) {
  const int lane = threadIdx.x % 32;
  return mlnode::warp_sum(lane < kWarps ? warp_sums[lane] : 0.0f);
}

// 2 * matmul(h, v): the dot rounded to the dtype, then doubled exactly.
template <typename T>
__device__ __forceinline__ float twice_rounded(float dot) {
  return __fmul_rn(2.0f, to_float(mlnode::from_float<T>(dot)));
}

// x − 2·dot·v on one pack, with libtorch's roundings (see the file's comment).
template <typename T, int N>
__device__ __forceinline__ Pack<T, N> reflect(const Pack<T, N>& xs, const Pack<T, N>& vs, float twice_dot) {
  Pack<T, N> out;
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const float product = to_float(mlnode::from_float<T>(__fmul_rn(twice_dot, to_float(vs.v[k]))));
    out.v[k] = mlnode::from_float<T>(__fsub_rn(to_float(xs.v[k]), product));
  }
  return out;
}

// Row r of the batch: hidden's rows are [0, rows), residual's [rows, 2·rows).
template <typename T>
__device__ __forceinline__ T* row_at(T* hidden, T* residual, long long rows, int dim, long long r) {
  return r < rows ? hidden + r * dim : residual + (r - rows) * dim;
}

// One block per row. The row is read once into shared memory while the dot is accumulated, then updated
// from there.
template <typename T, int N>
__global__ void householder_kernel(T* __restrict__ hidden, T* __restrict__ residual, const T* __restrict__ v,
                                   int rows, int dim) {
  extern __shared__ __align__(16) unsigned char shared_row[];
  __shared__ float warp_sums[kWarps];

  using P = Pack<T, N>;
  P* row = reinterpret_cast<P*>(row_at(hidden, residual, rows, dim, blockIdx.x));
  P* cached = reinterpret_cast<P*>(shared_row);
  const P* vector = reinterpret_cast<const P*>(v);
  const int packs = dim / N;

  float partial = 0.0f;
  for (int p = threadIdx.x; p < packs; p += kThreads) {
    const P xs = row[p];
    const P vs = vector[p];
    cached[p] = xs;
    for (int k = 0; k < N; ++k)
      partial = __fmaf_rn(to_float(xs.v[k]), to_float(vs.v[k]), partial);
  }
  partial = mlnode::warp_sum(partial);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = partial;
  __syncthreads();

  const float twice_dot = twice_rounded<T>(block_dot(warp_sums));
  for (int p = threadIdx.x; p < packs; p += kThreads) row[p] = reflect(cached[p], vector[p], twice_dot);
}

// Rows r = blockIdx.x, blockIdx.x + gridDim.x, … of the batch; each thread owns packs tid, tid + kThreads, …
// (at most R) of every row, summed in that order as householder_kernel does. The loads of the block's next row
// are issued before the current one is reduced and written, so a row is always in flight. One barrier per
// row: the warps' sums alternate between two buffers, and a warp rewrites one only after every thread has
// passed the barrier of the row after the one that read it.
template <typename T, int N, int R>
__global__ void __launch_bounds__(kThreads, R <= 2 ? 6 : 3) householder_stream_kernel(T* __restrict__ hidden, T* __restrict__ residual,
                                                                      const T* __restrict__ v, long long rows, int dim) {
  using P = Pack<T, N>;
  __shared__ float warp_sums[2][kWarps];
  const int packs = dim / N;
  const long long total = residual != nullptr ? 2 * rows : rows;

  const P* vector = reinterpret_cast<const P*>(v);  // read by every row: from L1, not held in registers
  P current[R], following[R];
  auto load = [&](long long r, P(&into)[R]) {
    const P* x = reinterpret_cast<const P*>(row_at(hidden, residual, rows, dim, r));
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int p = threadIdx.x + i * kThreads;
      if (p < packs) into[i] = x[p];
    }
  };

  long long r = blockIdx.x;
  if (r < total) load(r, current);
  for (int buffer = 0; r < total; r += gridDim.x, buffer ^= 1) {
    if (r + gridDim.x < total) load(r + gridDim.x, following);

    float partial = 0.0f;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int p = threadIdx.x + i * kThreads;
      if (p >= packs) continue;
      const P vs = vector[p];
#pragma unroll
      for (int k = 0; k < N; ++k) partial = __fmaf_rn(to_float(current[i].v[k]), to_float(vs.v[k]), partial);
    }
    partial = mlnode::warp_sum(partial);
    if (threadIdx.x % 32 == 0) warp_sums[buffer][threadIdx.x / 32] = partial;
    __syncthreads();

    const float twice_dot = twice_rounded<T>(block_dot(warp_sums[buffer]));
    P* x = reinterpret_cast<P*>(row_at(hidden, residual, rows, dim, r));
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int p = threadIdx.x + i * kThreads;
      if (p < packs) x[p] = reflect(current[i], vector[p], twice_dot);
      current[i] = following[i];
    }
  }
}

template <typename T, int N, int R>
mlnode_status launch_streaming(T* hidden, T* residual, const T* v, int rows, int dim, cudaStream_t stream) {
  int resident = 0;
  if (mlnode_status status = mlnode::resident_blocks<householder_stream_kernel<T, N, R>>("mlnode_poc_householder_reflect", kThreads, 0, resident);
      status != MLNODE_OK)
    return status;
  const long long total = residual != nullptr ? 2LL * rows : rows;
  const unsigned blocks = static_cast<unsigned>(std::min<long long>(total, resident));
  householder_stream_kernel<T, N, R><<<blocks, kThreads, 0, stream>>>(hidden, residual, v, rows, dim);
  return mlnode::check_launch("householder_stream_kernel");
}

template <typename T, int N>
mlnode_status launch(T* hidden, T* residual, const T* v, int rows, int dim, cudaStream_t stream) {
  const int per_thread = (dim / N + kThreads - 1) / kThreads;
  if (per_thread <= 1) return launch_streaming<T, N, 1>(hidden, residual, v, rows, dim, stream);
  if (per_thread <= 2) return launch_streaming<T, N, 2>(hidden, residual, v, rows, dim, stream);
  if (per_thread <= kMaxPacksPerThread) return launch_streaming<T, N, kMaxPacksPerThread>(hidden, residual, v, rows, dim, stream);

  const size_t shared = static_cast<size_t>(dim) * sizeof(T);
  if (shared > kDefaultSharedBytes) {
    const cudaError_t error = cudaFuncSetAttribute(householder_kernel<T, N>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                   static_cast<int>(shared));
    if (error != cudaSuccess)
      return mlnode::fail(MLNODE_UNSUPPORTED, "mlnode_poc_householder_reflect: a row of dim %d needs %zu bytes of shared memory: %s",
                          dim, shared, cudaGetErrorString(error));
  }
  const unsigned blocks = static_cast<unsigned>(residual != nullptr ? 2 * rows : rows);
  householder_kernel<T, N><<<blocks, kThreads, shared, stream>>>(hidden, residual, v, rows, dim);
  return mlnode::check_launch("householder_kernel");
}

}  // namespace

// Reflects rows × dim (contiguous, dtype f32/f16/bf16) of hidden and, when residual is not null, of residual
// (same shape and dtype) by the unit vector v [dim] of the same dtype, in place.
MLNODE_API mlnode_status mlnode_poc_householder_reflect(void* hidden, void* residual, const void* v, int64_t rows,
                                                        int32_t dim, int32_t dtype, void* stream) {
  if (hidden == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_householder_reflect: hidden is null");
  if (v == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_householder_reflect: v is null");
  if (rows < 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_householder_reflect: rows must not be negative, got %lld", (long long)rows);
  if (rows > INT_MAX / 2)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_householder_reflect: rows %lld exceeds %d", (long long)rows, INT_MAX / 2);
  if (dim <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_householder_reflect: dim must be positive, got %d", dim);
  if (rows == 0) return MLNODE_OK;

  const auto cuda_stream = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "mlnode_poc_householder_reflect", [&](auto zero) {
    using T = decltype(zero);
    constexpr int kVector = 16 / sizeof(T);
    T* h = static_cast<T*>(hidden);
    T* r = static_cast<T*>(residual);
    const T* u = static_cast<const T*>(v);
    // 16-byte accesses when every row starts on a 16-byte boundary; otherwise one element at a time.
    const bool vectorised = dim % kVector == 0 && mlnode::aligned16(h) && mlnode::aligned16(u) && (r == nullptr || mlnode::aligned16(r));
    const int n = static_cast<int>(rows);
    return vectorised ? launch<T, kVector>(h, r, u, n, dim, cuda_stream) : launch<T, 1>(h, r, u, n, dim, cuda_stream);
  });
}
