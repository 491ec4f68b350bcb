// PoC v2 artifacts of a batch of nonces from their final hidden rows, one thread block per nonce: what
// ArtifactEncoder.Vector + ArtifactCodec do on the host (C# reference: src/MLNode.Protocol/Poc), with the
// SHA-256 seeds and the Haar unit vectors still made on the host (HaarRotation.UnitVectors).
//
// Rounding follows the C# reference step by step: sums of squares and dot products accumulate in double and
// round once to float32 (Float32Vector), elementwise steps are float32 with explicit round-to-nearest
// intrinsics so the compiler cannot fuse them into FMAs, and the Haar dot products are summed in the
// reference's sequential order. Only the d-long norm is summed in another (fixed) order; in double that
// changes the float32 norm only when the exact sum lies within ~1e-16 of a rounding boundary.
#include <stdint.h>

#include "mlnode_cuda.cuh"
#include "poc_math.cuh"

namespace {

using mlnode::poc::mix;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxK = 64;
constexpr float kNormEpsilon = 1e-8f;
constexpr uint64_t kNoKey = ~0ull;

// Score in the high word, dimension in the low word: ordering keys orders scores, and the key names its
// dimension. Scores never tie (mix is a bijection in the key), so neither do keys.
__device__ __forceinline__ uint64_t pick_key(int j, uint32_t seed) {
  return (static_cast<uint64_t>(mix(static_cast<uint32_t>(j), seed)) << 32) | static_cast<uint32_t>(j);
}

// This thread's smallest key ≥ lower among the dimensions it strides over (kNoKey when none).
__device__ uint64_t smallest_key_from(uint64_t lower, uint32_t seed, int d) {
  uint64_t best = kNoKey;
  for (int j = threadIdx.x; j < d; j += kThreads) {
    const uint64_t key = pick_key(j, seed);
    if (key >= lower && key < best) best = key;
  }
  return best;
}

// The block's minimum, returned to every thread. The trailing barrier lets the next call reuse scratch.
__device__ uint64_t block_min(uint64_t v, uint64_t* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    const uint64_t other = __shfl_xor_sync(0xffffffffu, v, offset);
    v = other < v ? other : v;
  }
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  uint64_t m = scratch[0];
  for (int w = 1; w < kWarps; ++w) m = scratch[w] < m ? scratch[w] : m;
  __syncthreads();
  return m;
}

// The block's sum in a fixed order (butterfly within warps, then warps in order), returned to every thread.
__device__ double block_sum(double v, double* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  double s = scratch[0];
  for (int w = 1; w < kWarps; ++w) s += scratch[w];
  __syncthreads();
  return s;
}

// Float32Vector.Dot: float32 products are exact in double, so the sum rounds once, at the end.
__device__ float dot(const float* a, const float* b, int n) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// Float32Vector.Norm of a float32 sum of squares: the double square root rounded to float32.
__device__ __forceinline__ float norm_of_squares(float squares) {
  return static_cast<float>(sqrt(static_cast<double>(squares)));
}

// Block b: row b of hidden [B, d] → artifacts [b, 0..k), indices [b, 0..k), finite [b].
// haar holds the nonce's k−1 unit vectors of length k, row after row ([B, k−1, k]).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    poc_artifacts_kernel(const T* __restrict__ hidden, int d, int k, const uint32_t* __restrict__ pick_seeds,
                         const float* __restrict__ haar, __half* __restrict__ artifacts,
                         int32_t* __restrict__ indices, uint8_t* __restrict__ finite) {
  __shared__ uint64_t min_scratch[kWarps];
  __shared__ double sum_scratch[kWarps];
  __shared__ int by_score[kMaxK];
  __shared__ int picked[kMaxK];
  __shared__ float x[kMaxK];
  __shared__ float w[(kMaxK - 1) * kMaxK];

  const long long b = blockIdx.x;
  const T* row = hidden + b * d;
  const int tid = threadIdx.x;

  // The row's norm (+ε) and whether it is finite: the reference drops rows holding NaN or ±∞.
  double squares = 0.0;
  int bad = 0;
  for (int j = tid; j < d; j += kThreads) {
    const float v = mlnode::load_float(row, j);
    bad |= !isfinite(v);
    squares += static_cast<double>(v) * v;
  }
  const bool row_finite = !__syncthreads_or(bad);
  const float norm =
      __fadd_rn(norm_of_squares(static_cast<float>(block_sum(squares, sum_scratch))), kNormEpsilon);

  // The k smallest pick keys, ascending, one block minimum per round. Each thread holds its smallest key
  // not yet taken; only the thread whose key won looks for its next one.
  const uint32_t seed = pick_seeds[b];
  uint64_t candidate = smallest_key_from(0, seed, d);
  for (int r = 0; r < k; ++r) {
    const uint64_t winner = block_min(candidate, min_scratch);
    if (tid == 0) by_score[r] = static_cast<int>(static_cast<uint32_t>(winner));
    if (candidate == winner) candidate = smallest_key_from(winner + 1, seed, d);
  }
  __syncthreads();

  // DimensionPick's order: the k−1 smallest in ascending index order (rank among them, indices are
  // distinct), then the boundary dimension.
  if (tid < k - 1) {
    int rank = 0;
    for (int i = 0; i < k - 1; ++i) rank += by_score[i] < by_score[tid];
    picked[rank] = by_score[tid];
  }
  if (tid == 0) picked[k - 1] = by_score[k - 1];
  __syncthreads();

  if (tid < k) {
    indices[b * k + tid] = picked[tid];
    x[tid] = __fdiv_rn(mlnode::load_float(row, picked[tid]), norm);
  }
  const int w_count = (k - 1) * k;
  for (int i = tid; i < w_count; i += kThreads) w[i] = haar[b * w_count + i];
  __syncthreads();

  if (!row_finite) {
    if (tid < k) artifacts[b * k + tid] = __float2half_rn(0.0f);
    if (tid == 0) finite[b] = 0;
    return;
  }

  // k−1 reflections x − 2(x·w)w and the final normalisation: a chain of k-long sequential sums (the
  // reference's order), latency-bound and tiny next to the pick, so one thread runs it.
  if (tid != 0) return;
  for (int step = 0; step < k - 1; ++step) {
    const float* u = w + step * k;
    const float twice_dot = __fmul_rn(2.0f, dot(x, u, k));
    for (int i = 0; i < k; ++i) x[i] = __fsub_rn(x[i], __fmul_rn(twice_dot, u[i]));
  }
  const float x_norm = __fadd_rn(norm_of_squares(dot(x, x, k)), kNormEpsilon);
  for (int i = 0; i < k; ++i) artifacts[b * k + i] = __float2half_rn(__fdiv_rn(x[i], x_norm));
  finite[b] = 1;
}

}  // namespace

// hidden [B, d] (f32, f16 or bf16), pick_seeds [B] (PocSeeds.Pick), haar_vectors [B, k−1, k] float32
// (HaarRotation.UnitVectors) → artifacts [B, k] float16, indices [B, k] int32 (the picked dimensions in the
// reference order), finite [B] (1, or 0 for a row holding NaN or ±∞, whose artifact is written as zeros).
// 1 ≤ k ≤ 64, k ≤ d.
MLNODE_API mlnode_status mlnode_poc_artifacts_encode(const void* hidden, int32_t hidden_dtype, int64_t batch,
                                                     int32_t hidden_size, int32_t k_dim,
                                                     const uint32_t* pick_seeds, const float* haar_vectors,
                                                     void* artifacts, int32_t* indices, uint8_t* finite,
                                                     void* stream) {
  const char* name = "mlnode_poc_artifacts_encode";
  if (batch < 0 || batch > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: batch %lld is outside [0, 2^31)", name, (long long)batch);
  if (hidden_size < 1)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: hidden_size %d must be positive", name, hidden_size);
  if (k_dim < 1 || k_dim > kMaxK || k_dim > hidden_size)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: k_dim %d must be in [1, min(%d, hidden_size %d)]", name, k_dim,
                        kMaxK, hidden_size);
  if (batch == 0) return MLNODE_OK;
  if (hidden == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: hidden is null", name);
  if (pick_seeds == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: pick_seeds is null", name);
  if (haar_vectors == nullptr && k_dim > 1)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: haar_vectors is null", name);
  if (artifacts == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: artifacts is null", name);
  if (indices == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: indices is null", name);
  if (finite == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: finite is null", name);

  return mlnode::dispatch_float(static_cast<mlnode_dtype>(hidden_dtype), name, [&](auto tag) {
    using T = decltype(tag);
    poc_artifacts_kernel<T><<<static_cast<unsigned>(batch), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(hidden), hidden_size, k_dim, pick_seeds, haar_vectors, static_cast<__half*>(artifacts),
        indices, finite);
    return mlnode::check_launch("poc_artifacts_kernel");
  });
}
