// The PoC's per-layer structure breaking H x = x − 2 (x·v) v, in place, on every row of the hidden state and
// (optionally) of the residual, in one launch that reads and writes each element once.
//
// The rounding is libtorch's for the reference hook's expression `h - 2 * matmul(h, v).unsqueeze(-1) * v` in
// the activation dtype: the dot accumulated in float32 and rounded to the dtype, doubled (exact), each
// product 2·dot·v_i rounded to the dtype, the difference rounded to the dtype. Only the order of the dot's
// float32 sum can differ from cuBLAS's; here it is fixed (per-thread strided sums, then a butterfly over
// each warp and over the warps), so the same row always gives the same bits.
#include <limits.h>
#include <stdint.h>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kDefaultSharedBytes = 48 * 1024;

// N consecutive elements moved as one access (16 bytes when the row allows it).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

template <typename T>
__device__ __forceinline__ float to_float(T value) {
  return mlnode::load_float(&value, 0);
}


// One block per row: blocks [0, rows) reflect hidden's rows, blocks [rows, 2·rows) residual's. The row is
// read once into shared memory while the dot is accumulated, then updated from there.
template <typename T, int N>
__global__ void householder_kernel(T* __restrict__ hidden, T* __restrict__ residual, const T* __restrict__ v,
                                   int rows, int dim) {
  extern __shared__ __align__(16) unsigned char shared_row[];
  __shared__ float warp_sums[kWarps];
  __shared__ float dot;

  using P = Pack<T, N>;
  const long long block = blockIdx.x;
  T* x = block < rows ? hidden + block * dim : residual + (block - rows) * dim;
  P* row = reinterpret_cast<P*>(x);
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
  if (threadIdx.x < 32) {
    const float total = mlnode::warp_sum(threadIdx.x < kWarps ? warp_sums[threadIdx.x] : 0.0f);
    if (threadIdx.x == 0) dot = total;
  }
  __syncthreads();

  // 2 * matmul(h, v): the dot rounded to the dtype, then doubled exactly.
  const float twice_dot = __fmul_rn(2.0f, to_float(mlnode::from_float<T>(dot)));
  for (int p = threadIdx.x; p < packs; p += kThreads) {
    const P xs = cached[p];
    const P vs = vector[p];
    P out;
    for (int k = 0; k < N; ++k) {
      const float product = to_float(mlnode::from_float<T>(__fmul_rn(twice_dot, to_float(vs.v[k]))));
      out.v[k] = mlnode::from_float<T>(__fsub_rn(to_float(xs.v[k]), product));
    }
    row[p] = out;
  }
}


template <typename T, int N>
mlnode_status launch(T* hidden, T* residual, const T* v, int rows, int dim, cudaStream_t stream) {
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
