// y = x·Wᵀ (+ b) for the 3…64 rows of a batched decode step, on tensor cores (mma.sync, sm_80+). At these row counts the
// weights are still nearly all the traffic (64 rows reuse each weight 64 times, below the GPU's FLOP/byte balance), and
// cuBLAS streams them at ~75% of HBM on an H100; this kernel is built to stream them at the GEMV's rate.
//
// The product is computed transposed, yᵀ = W·xᵀ: 16 weight rows are the A operand of an m16n8k16 MMA and 8 input rows
// its B operand, so few input rows cost only a multiple of 8, not of 16. A block takes 64 weight rows (4 warps × 16)
// and every input row (kTiles × 8); the K dimension goes through shared memory in 64-wide slices, a ring of kStages
// slices kept in flight with cp.async. When there are too few 64-row tiles to fill the GPU, K is split over blocks and a
// second kernel sums the splits' float32 partials in split order: the split count depends only on (n, k) and the GPU's
// SM count, never on the number of rows or on timing, so a row's result is the same bits whichever rows run beside it.
#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kTileN = kWarps * 16;  // weight rows per block
constexpr int kSliceK = 64;          // K per pipeline stage
constexpr int kPitch = kSliceK + 8;  // a shared row of 144 bytes: ldmatrix's eight row reads fall in distinct banks
constexpr int kStages = 4;
constexpr int kMaxTiles = 8;         // 8 × 8 = 64 input rows
constexpr int kMaxSplits = 8;

template <typename T> struct Mma;
template <> struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};
template <> struct Mma<__half> {
  static __device__ __forceinline__ void run(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
};

__device__ __forceinline__ unsigned shared_address(const void* p) { return static_cast<unsigned>(__cvta_generic_to_shared(p)); }

// A 16-byte copy that writes zeros for rows past the matrix (src_bytes 0 reads nothing).
__device__ __forceinline__ void cp_async16_or_zero(void* shared, const void* global, bool inside) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared)), "l"(global), "r"(inside ? 16 : 0) : "memory");
}

// Blocks of kTileN weight rows × K splits. Split s covers K slices [s·S/splits, (s+1)·S/splits).
template <typename T, int kTiles>
__global__ void __launch_bounds__(kThreads) skinny_gemm(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                                                        T* __restrict__ y, float* __restrict__ partial, int rows, int n, int k, int splits) {
  extern __shared__ __align__(16) unsigned char shared[];
  T* ws = reinterpret_cast<T*>(shared);        // [kStages][kTileN][kPitch]
  T* xs = ws + kStages * kTileN * kPitch;      // [kStages][kTiles * 8][kPitch]
  const int tid = threadIdx.x, warp = tid / kWarp, lane = tid % kWarp;
  const int n0 = blockIdx.x * kTileN, split = blockIdx.y;
  const int slices = k / kSliceK;
  const int first = (int)((long long)split * slices / splits), last = (int)((long long)(split + 1) * slices / splits);
  mlnode::let_dependents_start();

  // Each thread copies 16-byte chunks: a slice row is 8 chunks, so a thread's chunk c is row c / 8, column 8·(c % 8).
  auto load_weights = [&](int slice, int stage) {
    T* dst = ws + stage * kTileN * kPitch;
#pragma unroll
    for (int c = tid; c < kTileN * 8; c += kThreads) {
      const int r = c / 8, col = (c % 8) * 8;
      const bool inside = n0 + r < n;
      cp_async16_or_zero(dst + r * kPitch + col, w + (long long)(inside ? n0 + r : 0) * k + slice * kSliceK + col, inside);
    }
  };
  auto load_inputs = [&](int slice, int stage) {
    T* dst = xs + stage * kTiles * 8 * kPitch;
#pragma unroll
    for (int c = tid; c < kTiles * 8 * 8; c += kThreads) {
      const int r = c / 8, col = (c % 8) * 8;
      const bool inside = r < rows;
      cp_async16_or_zero(dst + r * kPitch + col, x + (long long)(inside ? r : 0) * k + slice * kSliceK + col, inside);
    }
  };

  // The weights depend on no earlier kernel: their first slices stream in while the kernel before this one finishes.
  // (They join the first commit group, so the first wait covers them.)
  for (int s = 0; s < kStages - 1; s++)
    if (first + s < last) load_weights(first + s, s);
  mlnode::wait_for_prior_grids();
  for (int s = 0; s < kStages - 1; s++) {
    if (first + s < last) load_inputs(first + s, s);
    mlnode::cp_async_commit();
  }

  float acc[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;

  // ldmatrix row addresses. A (16 weight rows × 16 k): matrices 0–3 are rows 0–7 / 8–15 at k 0–7, then at k 8–15, the
  // order of the MMA's a0…a3. B (16 k × 8 input rows, stored as input rows of k): matrices 0–1 are k 0–7 and 8–15.
  const int a_row = warp * 16 + (lane % 8) + 8 * ((lane / 8) % 2), a_col = 8 * (lane / 16);
  const int b_row = lane % 8, b_col = 8 * ((lane / 8) % 2);

  for (int slice = first; slice < last; slice++) {
    const int stage = (slice - first) % kStages;
    mlnode::cp_async_wait<kStages - 2>();
    __syncthreads();
    // Refill the stage computed one iteration ago (every thread is past it: the barrier above).
    const int ahead = slice + kStages - 1;
    if (ahead < last) {
      load_weights(ahead, (ahead - first) % kStages);
      load_inputs(ahead, (ahead - first) % kStages);
    }
    mlnode::cp_async_commit();

    const T* wst = ws + stage * kTileN * kPitch;
    const T* xst = xs + stage * kTiles * 8 * kPitch;
#pragma unroll
    for (int kk = 0; kk < kSliceK; kk += 16) {
      unsigned a[4];
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                   : "r"(shared_address(wst + a_row * kPitch + kk + a_col)));
#pragma unroll
      for (int t = 0; t < kTiles; t++) {
        unsigned b0, b1;
        asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                     : "=r"(b0), "=r"(b1)
                     : "r"(shared_address(xst + (t * 8 + b_row) * kPitch + kk + b_col)));
        Mma<T>::run(acc[t], a, b0, b1);
      }
    }
  }
  mlnode::cp_async_wait<0>();

  // Accumulator c of tile t: c0, c1 at weight row g, input rows 2q and 2q + 1; c2, c3 at weight row g + 8 (g = lane / 4, q = lane % 4).
  const int g = lane / 4, q = lane % 4;
#pragma unroll
  for (int t = 0; t < kTiles; t++) {
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const int feature = n0 + warp * 16 + g + 8 * (i / 2), row = t * 8 + 2 * q + i % 2;
      if (feature >= n || row >= rows) continue;
      if (splits > 1) {
        partial[((long long)split * rows + row) * n + feature] = acc[t][i];
      } else {
        const float v = bias == nullptr ? acc[t][i] : __fadd_rn(acc[t][i], mlnode::load_float(bias, feature));
        y[(long long)row * n + feature] = mlnode::from_float<T>(v);
      }
    }
  }
}

// y = Σ over splits in split order (+ bias), rounded once.
template <typename T>
__global__ void sum_splits(const float* __restrict__ partial, const T* __restrict__ bias, T* __restrict__ y, int rows, int n, int splits) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, total = (long long)rows * n;
  if (i >= total) return;
  float v = partial[i];
  for (int s = 1; s < splits; s++) v = __fadd_rn(v, partial[s * total + i]);
  if (bias != nullptr) v = __fadd_rn(v, mlnode::load_float(bias, i % n));
  y[i] = mlnode::from_float<T>(v);
}

// K splits for an (n, k) product on the current device: enough blocks for two per SM, each split at least four slices.
mlnode_status split_count(int n, int k, int& splits) {
  int device = 0, sms = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "skinny_gemm: SM count: %s", cudaGetErrorString(error));
  const int tiles = (n + kTileN - 1) / kTileN, slices = k / kSliceK;
  splits = (2 * sms + tiles - 1) / tiles;
  splits = splits < 1 ? 1 : splits > kMaxSplits ? kMaxSplits : splits;
  while (splits > 1 && slices / splits < 4) splits--;
  return MLNODE_OK;
}

template <typename T, int kTiles>
mlnode_status launch(const void* x, const void* w, const void* bias, void* y, float* partial, int rows, int n, int k, int splits, cudaStream_t s) {
  const int shared = (int)sizeof(T) * kStages * (kTileN + kTiles * 8) * kPitch;
  auto kernel = skinny_gemm<T, kTiles>;
  int blocks = 0;  // sets the shared-memory limit once per device
  if (auto status = mlnode::resident_blocks<skinny_gemm<T, kTiles>>("skinny_gemm", kThreads, shared, blocks); status != MLNODE_OK) return status;
  const dim3 grid((n + kTileN - 1) / kTileN, splits);
  return mlnode::check_launch("skinny_gemm", mlnode::launch_chained(kernel, grid, kThreads, shared, s, static_cast<const T*>(x), static_cast<const T*>(w),
                                                                     static_cast<const T*>(bias), static_cast<T*>(y), partial, rows, n, k, splits));
}

template <typename T>
mlnode_status run(const void* x, const void* w, const void* bias, void* y, float* partial, int rows, int n, int k, int splits, cudaStream_t s) {
  mlnode_status status;
  switch ((rows + 7) / 8) {
    case 1: status = launch<T, 1>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 2: status = launch<T, 2>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 3: status = launch<T, 3>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 4: status = launch<T, 4>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 5: status = launch<T, 5>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 6: status = launch<T, 6>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    case 7: status = launch<T, 7>(x, w, bias, y, partial, rows, n, k, splits, s); break;
    default: status = launch<T, 8>(x, w, bias, y, partial, rows, n, k, splits, s); break;
  }
  if (status != MLNODE_OK || splits == 1) return status;
  const long long total = (long long)rows * n;
  return mlnode::check_launch("skinny_gemm sum", mlnode::launch_chained(sum_splits<T>, (unsigned)((total + 255) / 256), 256, 0, s, partial,
                                                                         static_cast<const T*>(bias), static_cast<T*>(y), rows, n, splits));
}

mlnode_status check_shape(int rows, int n, int k) {
  if (rows < 1 || rows > kMaxTiles * 8 || n <= 0 || k <= 0 || k % kSliceK != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "skinny_gemm: rows %d (1..%d), n %d, k %d (a multiple of %d)", rows, kMaxTiles * 8, n, k, kSliceK);
  return MLNODE_OK;
}

}  // namespace

MLNODE_API int32_t mlnode_skinny_gemm_max_rows(void) { return kMaxTiles * 8; }

// Bytes of float32 scratch mlnode_skinny_gemm needs for the split sums of an [rows, k]·[n, k]ᵀ product on the current device.
MLNODE_API mlnode_status mlnode_skinny_gemm_workspace_bytes(int32_t rows, int32_t n, int32_t k, int64_t* bytes) {
  if (bytes == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "skinny_gemm: bytes is null");
  if (auto status = check_shape(rows, n, k); status != MLNODE_OK) return status;
  int splits = 1;
  if (auto status = split_count(n, k, splits); status != MLNODE_OK) return status;
  *bytes = splits == 1 ? 0 : (int64_t)splits * rows * n * (int64_t)sizeof(float);
  return MLNODE_OK;
}

// x: [rows, k], w: [n, k], bias: [n] or null, y: [rows, n]; contiguous, bf16 or fp16, 16-byte aligned; k a multiple of 64;
// 1 ≤ rows ≤ mlnode_skinny_gemm_max_rows(); workspace: mlnode_skinny_gemm_workspace_bytes() bytes (null when 0).
MLNODE_API mlnode_status mlnode_skinny_gemm(const void* x, const void* w, const void* bias, void* y, int32_t rows, int32_t n, int32_t k,
                                            int32_t dtype, void* workspace, int64_t workspace_bytes, void* stream) {
  if (x == nullptr || w == nullptr || y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "skinny_gemm: null tensor pointer");
  if (auto status = check_shape(rows, n, k); status != MLNODE_OK) return status;
  if (!mlnode::aligned16(x) || !mlnode::aligned16(w)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "skinny_gemm: x and w must be 16-byte aligned");
  int splits = 1;
  if (auto status = split_count(n, k, splits); status != MLNODE_OK) return status;
  const int64_t needed = splits == 1 ? 0 : (int64_t)splits * rows * n * (int64_t)sizeof(float);
  if (workspace_bytes < needed || (needed > 0 && workspace == nullptr))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "skinny_gemm: the workspace has %lld bytes, %lld needed", (long long)workspace_bytes, (long long)needed);
  auto s = static_cast<cudaStream_t>(stream);
  auto partial = static_cast<float*>(workspace);
  switch (dtype) {
    case MLNODE_BF16: return run<__nv_bfloat16>(x, w, bias, y, partial, rows, n, k, splits, s);
    case MLNODE_F16: return run<__half>(x, w, bias, y, partial, rows, n, k, splits, s);
    default: return mlnode::fail(MLNODE_UNSUPPORTED, "skinny_gemm: element type %d (bf16 and fp16 only)", (int)dtype);
  }
}
