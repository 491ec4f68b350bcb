// NeoX rotary embedding in one kernel instead of libtorch's slice/neg/cat/mul/mul/add:
// y = x·cos + rotate_half(x)·sin with rotate_half(x) = [−x₂, x₁], every product and the sum rounded to
// the activation dtype exactly as the eager expression rounds them, so the result is bit-identical.
#include "mlnode_cuda.cuh"

namespace {

// x, y: [B, L, H, D] contiguous. cos/sin rows are found by (b, l) through their strides (0 where the table
// broadcasts: prefill tables are per position, decode tables per sequence).
template <typename T>
__global__ void rotary(const T* x, const T* cos, const T* sin, T* y, long long total, int length, int heads, int dim,
                       long long table_stride_b, long long table_stride_l) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int d = (int)(i % dim);
  const long long token = i / dim / heads;  // b·L + l
  const long long table = (token / length) * table_stride_b + (token % length) * table_stride_l + d;
  const int half = dim / 2;
  const float partner = mlnode::load_float(x, d < half ? i + half : i - half);
  // Explicitly rounded operations: for float32 nvcc would otherwise contract a product and the sum into
  // one fma, which the eager ops never do.
  const T x_cos = mlnode::from_float<T>(__fmul_rn(mlnode::load_float(x, i), mlnode::load_float(cos, table)));
  const T rot_sin = mlnode::from_float<T>(__fmul_rn(d < half ? -partner : partner, mlnode::load_float(sin, table)));
  y[i] = mlnode::from_float<T>(__fadd_rn(mlnode::load_float(&x_cos, 0), mlnode::load_float(&rot_sin, 0)));
}

}  // namespace

MLNODE_API mlnode_status mlnode_rotary(const void* x, const void* cos, const void* sin, void* y, int32_t batch, int32_t length,
                                       int32_t heads, int32_t dim, int64_t table_stride_b, int64_t table_stride_l,
                                       int32_t dtype, void* stream) {
  if (x == nullptr || cos == nullptr || sin == nullptr || y == nullptr)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rotary: null tensor pointer");
  if (batch < 0 || length < 0 || heads <= 0 || dim <= 0 || dim % 2 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rotary: shape [%d, %d, %d, %d] (head dim must be even)", batch, length, heads, dim);
  if (table_stride_b < 0 || table_stride_l < 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "rotary: negative table stride");
  const long long total = (long long)batch * length * heads * dim;
  if (total == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "rotary", [&](auto zero) {
    using T = decltype(zero);
    constexpr int threads = 256;
    rotary<<<(unsigned)((total + threads - 1) / threads), threads, 0, s>>>(
        static_cast<const T*>(x), static_cast<const T*>(cos), static_cast<const T*>(sin), static_cast<T*>(y), total, length, heads,
        dim, table_stride_b, table_stride_l);
    return mlnode::check_launch("rotary");
  });
}
