// y = x·Wᵀ (+ b) for the few input rows of a decode step: the weights are the traffic, so each is read once, in 16-byte
// vectors with several loads in flight per lane, and used for every row. For one row this streams at 80–94% of HBM
// bandwidth on an H100 where cuBLAS reaches 70–83%; from four rows on, reading x from L1 for every weight vector makes
// it slower than cuBLAS (benchmarks/kernels/decode_attention.py), so mlnode_gemv_max_rows() is 2.
//
// One warp per output feature: lane l sums the vectors l, l + 32, … of the weight row in that order, then the warp
// sums its lanes in a fixed butterfly. The order depends only on the row length, so an output does not depend on how
// many rows ran beside it, and every run gives the same bits.
#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 4;
constexpr int kMaxRows = 2;

// A weight vector read once: no point keeping it in L1.
__device__ __forceinline__ uint4 load_streaming(const uint4* p) { return __ldcs(p); }

template <typename T, int kRows>
__global__ void __launch_bounds__(kWarpsPerBlock * kWarp) gemv(const T* x, const T* w, const T* bias, T* y, int n, int k) {
  constexpr int kVec = mlnode::kPerVector<T>;
  mlnode::let_dependents_start();
  const int feature = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (feature >= n) return;
  const uint4* wr = reinterpret_cast<const uint4*>(w + (long long)feature * k);
  const int vectors = k / kVec;
  float acc[kRows];
#pragma unroll
  for (int m = 0; m < kRows; m++) acc[m] = 0.f;

  auto accumulate = [&](const uint4& raw, int v) {
    float wf[kVec];
    mlnode::unpack<T>(raw, wf);
#pragma unroll
    for (int m = 0; m < kRows; m++) {
      float xf[kVec];
      mlnode::unpack<T>(__ldg(reinterpret_cast<const uint4*>(x + (long long)m * k) + v), xf);
#pragma unroll
      for (int e = 0; e < kVec; e++) acc[m] = fmaf(wf[e], xf[e], acc[m]);
    }
  };

  // The first weight vectors depend on no earlier kernel: in a chained launch they stream in while the kernels before
  // this one (the norm, attention) finish. Only x waits. Then each group's successor is loaded before the group is
  // summed, so a lane keeps loads in flight while it computes (the sums keep their order).
  int v = lane;
  uint4 raw[kUnroll];
  if (v + (kUnroll - 1) * kWarp < vectors) {
#pragma unroll
    for (int u = 0; u < kUnroll; u++) raw[u] = load_streaming(wr + v + u * kWarp);
  }
  mlnode::wait_for_prior_grids();
  for (; v + (kUnroll - 1) * kWarp < vectors; v += kUnroll * kWarp) {
    const int after = v + kUnroll * kWarp;
    const bool more = after + (kUnroll - 1) * kWarp < vectors;
    uint4 next[kUnroll];
    if (more) {
#pragma unroll
      for (int u = 0; u < kUnroll; u++) next[u] = load_streaming(wr + after + u * kWarp);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; u++) accumulate(raw[u], v + u * kWarp);
    if (more) {
#pragma unroll
      for (int u = 0; u < kUnroll; u++) raw[u] = next[u];
    }
  }
  for (; v < vectors; v += kWarp) accumulate(load_streaming(wr + v), v);

#pragma unroll
  for (int m = 0; m < kRows; m++) {
    const float sum = mlnode::warp_sum(acc[m]);
    if (lane == 0) y[(long long)m * n + feature] = mlnode::from_float<T>(bias == nullptr ? sum : __fadd_rn(sum, mlnode::load_float(bias, feature)));
  }
}

template <typename T, int kRows>
cudaError_t launch(const void* x, const void* w, const void* bias, void* y, int n, int k, cudaStream_t s) {
  return mlnode::launch_chained(gemv<T, kRows>, (n + kWarpsPerBlock - 1) / kWarpsPerBlock, kWarpsPerBlock * kWarp, 0, s,
                                static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias), static_cast<T*>(y), n, k);
}

}  // namespace

MLNODE_API int32_t mlnode_gemv_max_rows(void) { return kMaxRows; }

// x: [rows, k], w: [n, k], bias: [n] or null, y: [rows, n]; contiguous, one floating dtype, 16-byte aligned, k a whole
// number of 16-byte vectors; 1 ≤ rows ≤ mlnode_gemv_max_rows().
MLNODE_API mlnode_status mlnode_gemv(const void* x, const void* w, const void* bias, void* y, int32_t rows, int32_t n, int32_t k,
                                     int32_t dtype, void* stream) {
  if (x == nullptr || w == nullptr || y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "gemv: null tensor pointer");
  if (rows < 1 || rows > kMaxRows || n <= 0 || k <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "gemv: rows %d (1..%d), n %d, k %d", rows, kMaxRows, n, k);
  if (!mlnode::aligned16(x) || !mlnode::aligned16(w))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "gemv: x and w must be 16-byte aligned");
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "gemv", [&](auto zero) {
    using T = decltype(zero);
    if (k % mlnode::kPerVector<T> != 0)
      return mlnode::fail(MLNODE_INVALID_ARGUMENT, "gemv: k %d is not a multiple of %d", k, mlnode::kPerVector<T>);
    return mlnode::check_launch("gemv", rows == 1 ? launch<T, 1>(x, w, bias, y, n, k, s) : launch<T, 2>(x, w, bias, y, n, k, s));
  });
}
