// SwiGLU's gate: y = dtype(dtype(silu(gate)) · up) over the packed [rows, 2F] output of the gate/up projection, one
// kernel instead of libtorch's silu and mul (and their [rows, F] temporary), rounded as those two ops round.
#include "mlnode_cuda.cuh"

namespace {

template <typename T>
__global__ void silu_mul(const T* gate_up, T* y, long long total, int width) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const long long row = i / width, col = i % width;
  const float g = mlnode::load_float(gate_up, row * 2 * width + col);
  const T silu = mlnode::from_float<T>(g / (1.0f + expf(-g)));
  y[i] = mlnode::from_float<T>(__fmul_rn(mlnode::load_float(&silu, 0), mlnode::load_float(gate_up, row * 2 * width + width + col)));
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
    constexpr int threads = 256;
    return mlnode::check_launch("silu_mul", mlnode::launch_chained(silu_mul<T>, (unsigned)((total + threads - 1) / threads), threads, 0, s,
                                                                   static_cast<const T*>(gate_up), static_cast<T*>(y), total, width));
  });
}
