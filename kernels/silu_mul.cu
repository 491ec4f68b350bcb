// SwiGLU's gate: y = dtype(dtype(silu(gate)) · up) over the packed [rows, 2F] output of the gate/up projection, one
// kernel instead of libtorch's silu and mul (and their [rows, F] temporary), rounded as those two ops round.
#include "mlnode_cuda.cuh"

namespace {

template <typename T>
__device__ __forceinline__ T silu_times(float g, float u) {
  const T silu = mlnode::from_float<T>(g / (1.0f + expf(-g)));
  return mlnode::from_float<T>(__fmul_rn(mlnode::load_float(&silu, 0), u));
}

template <typename T>
__global__ void silu_mul(const T* gate_up, T* y, long long total, int width) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const long long row = i / width, col = i % width;
  y[i] = silu_times<T>(mlnode::load_float(gate_up, row * 2 * width + col), mlnode::load_float(gate_up, row * 2 * width + width + col));
}

// The same, one 16-byte vector of gate, up and y per thread (width a whole number of vectors): a batch's rows in a
// quarter of the threads and loads.
template <typename T>
__global__ void silu_mul_vectors(const T* gate_up, T* y, long long vectors, int width_vectors) {
  constexpr int kVec = mlnode::kPerVector<T>;
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= vectors) return;
  const long long row = i / width_vectors, col = i % width_vectors;
  const uint4* in = reinterpret_cast<const uint4*>(gate_up) + row * 2 * width_vectors;
  float g[kVec], u[kVec];
  mlnode::unpack<T>(in[col], g);
  mlnode::unpack<T>(in[width_vectors + col], u);
  mlnode::Vector<T> out;
#pragma unroll
  for (int e = 0; e < kVec; e++) out.values[e] = silu_times<T>(g[e], u[e]);
  reinterpret_cast<uint4*>(y)[i] = out.raw;
}

}  // namespace

// gate_up: [rows, 2·width] (gate then up); y: [rows, width]; contiguous, one floating dtype.
MLNODE_API mlnode_status mlnode_silu_mul(const void* gate_up, void* y, int64_t rows, int32_t width, int32_t dtype, void* stream) {
  if (gate_up == nullptr || y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "silu_mul: null tensor pointer");
  if (rows < 0 || width <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "silu_mul: rows %lld, width %d", (long long)rows, width);
  const long long total = rows * width;
  if (total == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "silu_mul", [&](auto zero) {
    using T = decltype(zero);
    constexpr int threads = 256, kVec = mlnode::kPerVector<T>;
    if (width % kVec == 0 && mlnode::aligned16(gate_up) && mlnode::aligned16(y)) {
      const long long vectors = total / kVec;
      return mlnode::check_launch("silu_mul", mlnode::launch_chained(silu_mul_vectors<T>, (unsigned)((vectors + threads - 1) / threads), threads, 0, s,
                                                                     static_cast<const T*>(gate_up), static_cast<T*>(y), vectors, width / kVec));
    }
    return mlnode::check_launch("silu_mul", mlnode::launch_chained(silu_mul<T>, (unsigned)((total + threads - 1) / threads), threads, 0, s,
                                                                   static_cast<const T*>(gate_up), static_cast<T*>(y), total, width));
  });
}
