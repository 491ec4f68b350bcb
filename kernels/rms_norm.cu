// RMSNorm as Qwen computes it, in one pass over each row instead of libtorch's six ops and float32
// temporaries: y = w · dtype(x · rsqrt(mean(x²) + eps)), the mean taken in float32.
#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kBlockThreads = 256;

template <typename T>
__device__ __forceinline__ void write_row(const T* x, const T* __restrict__ w, T* __restrict__ y, int width, float inv_rms, int lane, int lanes) {
#pragma unroll 4
  for (int i = lane; i < width; i += lanes) {
    const T normed = mlnode::from_float<T>(mlnode::load_float(x, i) * inv_rms);
    y[i] = mlnode::from_float<T>(mlnode::load_float(w, i) * mlnode::load_float(&normed, 0));
  }
}

// write_row a vector at a time: thread t writes vectors t, t + kBlockThreads, … of the row.
template <typename T>
__device__ __forceinline__ void write_vectors(const T* x, const T* __restrict__ w, T* __restrict__ y, int vectors, float inv_rms) {
  constexpr int kVec = mlnode::kPerVector<T>;
  for (int v = threadIdx.x; v < vectors; v += kBlockThreads) {
    float xf[kVec], wf[kVec];
    mlnode::unpack<T>(reinterpret_cast<const uint4*>(x)[v], xf);
    mlnode::unpack<T>(reinterpret_cast<const uint4*>(w)[v], wf);
    mlnode::Vector<T> out;
#pragma unroll
    for (int e = 0; e < kVec; e++) {
      const T normed = mlnode::from_float<T>(xf[e] * inv_rms);
      out.values[e] = mlnode::from_float<T>(wf[e] * mlnode::load_float(&normed, 0));
    }
    reinterpret_cast<uint4*>(y)[v] = out.raw;
  }
}

// Short rows (per-head q/k norms, width ≤ 1024): one warp per row.
template <typename T>
__global__ void rms_norm_warp(const T* x, const T* w, T* y, long long rows, int width, float eps) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long row = (long long)blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
  if (row >= rows) return;
  const int lane = threadIdx.x % kWarp;
  const T* xr = x + row * width;
  float sum = 0.f;
  for (int i = lane; i < width; i += kWarp) {
    const float v = mlnode::load_float(xr, i);
    sum = fmaf(v, v, sum);
  }
  const float inv_rms = rsqrtf(mlnode::warp_sum(sum) / width + eps);
  write_row(xr, w, y + row * width, width, inv_rms, lane, kWarp);
}

// The sum of every thread's partial over a block of kBlockThreads: warp sums, then the warps' in warp order.
__device__ __forceinline__ float block_sum(float partial_sum) {
  __shared__ float partial[kBlockThreads / kWarp];
  partial_sum = mlnode::warp_sum(partial_sum);
  if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = partial_sum;
  __syncthreads();
  float total = 0.f;
  for (int i = 0; i < kBlockThreads / kWarp; i++) total += partial[i];
  return total;
}

// Hidden-state rows: one block per row; warp partials combined in warp order. Rows of whole 16-byte vectors (kVectors)
// are read and written a vector at a time, thread t taking vectors t, t + kBlockThreads, …: a decode step's few rows are
// bound by the latency of these loads, and a vector load brings eight bf16 at once.
template <typename T, bool kVectors>
__global__ void rms_norm_block(const T* __restrict__ x, const T* __restrict__ w, T* __restrict__ y, int width, float eps) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const T* xr = x + (long long)blockIdx.x * width;
  T* yr = y + (long long)blockIdx.x * width;
  float sum = 0.f;
  if constexpr (kVectors) {
    constexpr int kVec = mlnode::kPerVector<T>;
    const int vectors = width / kVec;
    for (int v = threadIdx.x; v < vectors; v += kBlockThreads) {
      float f[kVec];
      mlnode::unpack<T>(reinterpret_cast<const uint4*>(xr)[v], f);
#pragma unroll
      for (int e = 0; e < kVec; e++) sum = fmaf(f[e], f[e], sum);
    }
    write_vectors(xr, w, yr, vectors, rsqrtf(block_sum(sum) / width + eps));
  } else {
    // Unrolled so that several loads are in flight: a decode step's single row is bound by their latency.
#pragma unroll 4
    for (int i = threadIdx.x; i < width; i += kBlockThreads) {
      const float v = mlnode::load_float(xr, i);
      sum = fmaf(v, v, sum);
    }
    write_row(xr, w, yr, width, rsqrtf(block_sum(sum) / width + eps), threadIdx.x, kBlockThreads);
  }
}

// The residual sum and its norm in one pass: sum = dtype(x + r) (the eager add's rounding), y = RMSNorm(sum), with the
// elements taken in rms_norm_block's order, so y equals rms_norm_block(sum) bit for bit. Each thread reads back only the
// sums it wrote itself.
template <typename T, bool kVectors>
__global__ void add_rms_norm_block(const T* __restrict__ x, const T* __restrict__ r, const T* __restrict__ w, T* __restrict__ sum_out,
                                   T* __restrict__ y, int width, float eps) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long offset = (long long)blockIdx.x * width;
  T* sr = sum_out + offset;
  float sum = 0.f;
  if constexpr (kVectors) {
    constexpr int kVec = mlnode::kPerVector<T>;
    const int vectors = width / kVec;
    for (int v = threadIdx.x; v < vectors; v += kBlockThreads) {
      float a[kVec], b[kVec];
      mlnode::unpack<T>(reinterpret_cast<const uint4*>(x + offset)[v], a);
      mlnode::unpack<T>(reinterpret_cast<const uint4*>(r + offset)[v], b);
      mlnode::Vector<T> rounded;
#pragma unroll
      for (int e = 0; e < kVec; e++) {
        rounded.values[e] = mlnode::from_float<T>(__fadd_rn(a[e], b[e]));
        const float s = mlnode::load_float(&rounded.values[e], 0);
        sum = fmaf(s, s, sum);
      }
      reinterpret_cast<uint4*>(sr)[v] = rounded.raw;
    }
    write_vectors(sr, w, y + offset, vectors, rsqrtf(block_sum(sum) / width + eps));
  } else {
#pragma unroll 4
    for (int i = threadIdx.x; i < width; i += kBlockThreads) {
      const T rounded = mlnode::from_float<T>(__fadd_rn(mlnode::load_float(x + offset, i), mlnode::load_float(r + offset, i)));
      sr[i] = rounded;
      const float v = mlnode::load_float(&rounded, 0);
      sum = fmaf(v, v, sum);
    }
    write_row(sr, w, y + offset, width, rsqrtf(block_sum(sum) / width + eps), threadIdx.x, kBlockThreads);
  }
}

}  // namespace

// x, y: [rows, width] contiguous; w: [width]; all of one floating dtype. y may not alias x.
MLNODE_API mlnode_status mlnode_rms_norm(const void* x, const void* w, void* y, int64_t rows, int32_t width, float eps,
                                         int32_t dtype, void* stream) {
  if (x == nullptr || w == nullptr || y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rms_norm: null tensor pointer");
  if (rows < 0 || width <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rms_norm: rows %lld, width %d", (long long)rows, width);
  if (!(eps >= 0.f)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rms_norm: eps %g", eps);
  if (rows == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "rms_norm", [&](auto zero) {
    using T = decltype(zero);
    if (width <= 1024) {
      constexpr int rows_per_block = kBlockThreads / kWarp;
      const long long blocks = (rows + rows_per_block - 1) / rows_per_block;
      return mlnode::check_launch("rms_norm", mlnode::launch_chained(rms_norm_warp<T>, (unsigned)blocks, kBlockThreads, 0, s, static_cast<const T*>(x),
                                                                     static_cast<const T*>(w), static_cast<T*>(y), rows, width, eps));
    }
    const bool vectors = width % mlnode::kPerVector<T> == 0 && mlnode::aligned16(x) && mlnode::aligned16(w) && mlnode::aligned16(y);
    return mlnode::check_launch("rms_norm", mlnode::launch_chained(vectors ? rms_norm_block<T, true> : rms_norm_block<T, false>, (unsigned)rows,
                                                                   kBlockThreads, 0, s, static_cast<const T*>(x), static_cast<const T*>(w),
                                                                   static_cast<T*>(y), width, eps));
  });
}

// x, r, sum, y: [rows, width] contiguous; w: [width]; sum = x + r rounded to the dtype, y = RMSNorm(sum). Outputs may not alias inputs.
MLNODE_API mlnode_status mlnode_add_rms_norm(const void* x, const void* r, const void* w, void* sum, void* y, int64_t rows, int32_t width,
                                             float eps, int32_t dtype, void* stream) {
  if (x == nullptr || r == nullptr || w == nullptr || sum == nullptr || y == nullptr)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "add_rms_norm: null tensor pointer");
  if (rows < 0 || width <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "add_rms_norm: rows %lld, width %d", (long long)rows, width);
  if (!(eps >= 0.f)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "add_rms_norm: eps %g", eps);
  if (rows == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "add_rms_norm", [&](auto zero) {
    using T = decltype(zero);
    const bool vectors = width % mlnode::kPerVector<T> == 0 && mlnode::aligned16(x) && mlnode::aligned16(r) && mlnode::aligned16(w) &&
                         mlnode::aligned16(sum) && mlnode::aligned16(y);
    return mlnode::check_launch("add_rms_norm", mlnode::launch_chained(vectors ? add_rms_norm_block<T, true> : add_rms_norm_block<T, false>,
                                                                       (unsigned)rows, kBlockThreads, 0, s,
                                                                       static_cast<const T*>(x), static_cast<const T*>(r), static_cast<const T*>(w),
                                                                       static_cast<T*>(sum), static_cast<T*>(y), width, eps));
  });
}
