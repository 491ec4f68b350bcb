// Large-batch y = x·Wᵀ for block-scaled FP8 weights (DeepSeek-V3 / Qwen3-FP8 checkpoints) on FP8 tensor cores, the
// way vLLM runs these checkpoints (w8a8 block FP8): the activations are quantised to E4M3 per (row, 128-column group)
// and cuBLASLt multiplies the two FP8 operands with their scales applied per 128-element block of the sum.
//
// - mlnode_fp8_quantize_groups: x [rows, cols] → q [padded_rows, cols] E4M3 and scales [ceil(cols/128), padded_rows]
//   float32, bit-exact with the C# reference (Fp8GroupQuantizer): amax = max |x| of the group in float32, scale =
//   amax / 448 rounded to nearest, q = the E4M3 nearest (ties to even, saturating at ±448) to x / scale rounded to
//   nearest; a group whose scale is 0 quantises to zeros. Rows from `rows` to `padded_rows` are zeros.
// - mlnode_fp8_block_gemm: y [rows, out] = (q, scales) · (W, scale_inv)ᵀ through cuBLASLt's 128-element 1D (VEC128_32F,
//   activations) and 128×128 2D (BLK128x128_32F, weights) block scaling: Hopper (compute capability 9.x) with cuBLAS
//   12.9 or newer only; elsewhere it answers MLNODE_UNSUPPORTED and callers dequantise and run the dense GEMM.
#include <cublasLt.h>
#include <stdint.h>

#include <climits>
#include <mutex>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Columns that share one activation scale: a warp quantises one group, 4 columns per lane.
constexpr int kGroup = 128;
constexpr float kE4M3Max = 448.0f;

// The E4M3 byte nearest to v (ties to even), saturating to ±448; NaN becomes 0x7F. Written with integer steps that the
// C# reference (Fp8E4M3.FromFloat) repeats one for one, so the two agree on every input, subnormals included.
__device__ __forceinline__ uint32_t float_to_e4m3(float v) {
  const uint32_t bits = __float_as_uint(v);
  const uint32_t sign = (bits >> 24) & 0x80u;
  if (isnan(v)) return 0x7Fu;
  const float magnitude = fabsf(v);
  if (magnitude >= kE4M3Max) return sign | 0x7Eu;
  // Below 2⁻⁶ E4M3 is subnormal with a step of 2⁻⁹; its codes count those steps, and 8 steps is 0x08 = 2⁻⁶.
  if (magnitude < 0.015625f) return sign | (uint32_t)rintf(magnitude * 512.0f);
  // Round float32's 23 mantissa bits to E4M3's 3 (nearest, ties to even); a carry moves into the exponent.
  const uint32_t rounded = (bits & 0x7FFFFFFFu) + 0x7FFFFu + ((bits >> 20) & 1u);
  return sign | (((rounded >> 23) - (127u - 7u)) << 3) | ((rounded >> 20) & 7u);
}

// One warp per (row, group). The amax reduction is a max, exact in any order, so the shuffle tree changes nothing.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    quantize_groups_kernel(const T* __restrict__ x, int rows, int cols, int padded_rows, int groups, bool packed,
                           uint8_t* __restrict__ q, float* __restrict__ scales) {
  const long long task = (long long)blockIdx.x * kWarps + threadIdx.x / 32;
  if (task >= (long long)padded_rows * groups) return;  // the whole warp leaves together
  const int row = (int)(task / groups), group = (int)(task % groups), lane = threadIdx.x % 32;
  const int first = group * kGroup + lane * 4;
  float v[4];
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    const int col = first + i;
    v[i] = row < rows && col < cols ? mlnode::load_float(x, (long long)row * cols + col) : 0.0f;
    amax = fmaxf(amax, fabsf(v[i]));  // fmaxf passes over NaN, as the reference's comparison does
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
  const float scale = __fdiv_rn(amax, kE4M3Max);

  uint32_t codes[4];
#pragma unroll
  for (int i = 0; i < 4; i++) codes[i] = scale == 0.0f ? 0u : float_to_e4m3(__fdiv_rn(v[i], scale));
  uint8_t* out = q + (long long)row * cols + first;
  if (packed) {  // cols % 4 == 0: a lane's 4 columns are all in range or all past the end, and 4-byte aligned
    if (first < cols) *reinterpret_cast<uint32_t*>(out) = codes[0] | (codes[1] << 8) | (codes[2] << 16) | (codes[3] << 24);
  } else {
    for (int i = 0; i < 4 && first + i < cols; i++) out[i] = (uint8_t)codes[i];
  }
  if (lane == 0) scales[(long long)group * padded_rows + row] = scale;
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

#if CUDART_VERSION >= 12090

// cuBLASLt's recommended workspace on Hopper.
constexpr size_t kWorkspaceBytes = 32u << 20;
constexpr int kMaxDevices = 64;

// One cuBLASLt handle and workspace per device, made at the device's first GEMM and kept for the process. The
// workspace serves one stream at a time: kernels here run on libtorch's current stream.
struct LtDevice {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};
std::mutex lt_mutex;
LtDevice lt_devices[kMaxDevices];

mlnode_status lt_fail(const char* entry, const char* call, cublasStatus_t status) {
  return mlnode::fail(MLNODE_CUDA_ERROR, "%s: %s returned cublasStatus %d", entry, call, (int)status);
}

// Checks a cuBLASLt call inside a function returning mlnode_status, naming the call in the message.
#define MLNODE_LT_CHECK(entry, call)                                        \
  do {                                                                      \
    const cublasStatus_t lt_status_ = (call);                               \
    if (lt_status_ != CUBLAS_STATUS_SUCCESS) return lt_fail(entry, #call, lt_status_); \
  } while (0)

// OK when `device` has the 128-element block-scaled FP8 GEMM; MLNODE_UNSUPPORTED with the reason otherwise.
mlnode_status lt_support(const char* entry, int device) {
  int major = 0, minor = 0;
  cudaError_t error = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "%s: device %d: %s", entry, device, cudaGetErrorString(error));
  if (major != 9)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: device %d has compute capability %d.%d; cuBLASLt's 128-element block scaling needs 9.x",
                        entry, device, major, minor);
  const size_t version = cublasLtGetVersion();
  if (version < 120900)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: the loaded cuBLASLt is version %zu; 128-element block scaling needs 120900 (CUDA 12.9)",
                        entry, version);
  return MLNODE_OK;
}

mlnode_status lt_device(const char* entry, int device, LtDevice* out) {
  if (device < 0 || device >= kMaxDevices)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: device %d is beyond the %d this library serves", entry, device, kMaxDevices);
  std::lock_guard<std::mutex> lock(lt_mutex);
  LtDevice& slot = lt_devices[device];
  if (slot.handle == nullptr) {
    cublasLtHandle_t handle = nullptr;
    MLNODE_LT_CHECK(entry, cublasLtCreate(&handle));
    void* workspace = nullptr;
    const cudaError_t error = cudaMalloc(&workspace, kWorkspaceBytes);
    if (error != cudaSuccess) {
      cublasLtDestroy(handle);
      return mlnode::fail(MLNODE_CUDA_ERROR, "%s: cudaMalloc of the %zu-byte cuBLASLt workspace: %s", entry, kWorkspaceBytes,
                          cudaGetErrorString(error));
    }
    slot.handle = handle;
    slot.workspace = workspace;
  }
  *out = slot;
  return MLNODE_OK;
}

// The descriptors of one GEMM, destroyed on every path out (a failed destroy leaks a few host bytes, nothing else).
struct LtPlan {
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  ~LtPlan() {
    if (preference != nullptr) cublasLtMatmulPreferenceDestroy(preference);
    if (d != nullptr) cublasLtMatrixLayoutDestroy(d);
    if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
    if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
    if (operation != nullptr) cublasLtMatmulDescDestroy(operation);
  }
};

// cuBLASLt is column-major: row-major W [out, in] is a column-major in × out matrix, row-major x [n, in] an in × n one,
// and row-major y [n, out] the column-major out × n matrix D = op(A)·B with A = W transposed (the "TN" layout FP8
// needs on Hopper). So cuBLAS's M = out, N = n and K = in; W's scale_inv [ceil(out/128), in/128] row-major is the
// K-major L × ceil(M/128) grid BLK128x128_32F reads (column stride L, a multiple of 4), and the activation scales
// [in/128, n] are the N-major N × L grid of VEC128_32F.
mlnode_status lt_gemm(const char* entry, const LtDevice& lt, const void* xq, const void* x_scales, const void* weight,
                      const void* weight_scales, int64_t n, int64_t in, int64_t out, void* y, cudaDataType_t type,
                      cudaStream_t stream) {
  LtPlan plan;
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescCreate(&plan.operation, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const int32_t transpose = CUBLAS_OP_T, keep = CUBLAS_OP_N;
  const int32_t weight_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
  const int32_t activation_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_TRANSB, &keep, sizeof keep));
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &weight_mode, sizeof weight_mode));
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &activation_mode, sizeof activation_mode));
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &weight_scales, sizeof weight_scales));
  MLNODE_LT_CHECK(entry, cublasLtMatmulDescSetAttribute(plan.operation, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scales, sizeof x_scales));
  MLNODE_LT_CHECK(entry, cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_8F_E4M3, (uint64_t)in, (uint64_t)out, in));
  MLNODE_LT_CHECK(entry, cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_8F_E4M3, (uint64_t)in, (uint64_t)n, in));
  MLNODE_LT_CHECK(entry, cublasLtMatrixLayoutCreate(&plan.d, type, (uint64_t)out, (uint64_t)n, out));

  // A fixed 16-byte alignment (what the entry point checks) rather than the buffers' actual one, so the algorithm,
  // and with it every bit of y, depends only on the GPU, the library and the shape.
  const uint64_t workspace_bytes = kWorkspaceBytes;
  const uint32_t alignment = 16;
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceCreate(&plan.preference));
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceSetAttribute(plan.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes, sizeof workspace_bytes));
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceSetAttribute(plan.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignment, sizeof alignment));
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceSetAttribute(plan.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignment, sizeof alignment));
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceSetAttribute(plan.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignment, sizeof alignment));
  MLNODE_LT_CHECK(entry, cublasLtMatmulPreferenceSetAttribute(plan.preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignment, sizeof alignment));

  cublasLtMatmulHeuristicResult_t heuristic = {};
  int found = 0;
  MLNODE_LT_CHECK(entry, cublasLtMatmulAlgoGetHeuristic(lt.handle, plan.operation, plan.a, plan.b, plan.d, plan.d,
                                                        plan.preference, 1, &heuristic, &found));
  if (found == 0)
    return mlnode::fail(MLNODE_UNSUPPORTED, "%s: cuBLASLt has no block-scaled FP8 algorithm for n %lld, in %lld, out %lld",
                        entry, (long long)n, (long long)in, (long long)out);
  const float alpha = 1.0f, beta = 0.0f;
  MLNODE_LT_CHECK(entry, cublasLtMatmul(lt.handle, plan.operation, &alpha, weight, plan.a, xq, plan.b, &beta, y, plan.d, y,
                                        plan.d, &heuristic.algo, lt.workspace, kWorkspaceBytes, stream));
  return MLNODE_OK;
}

#undef MLNODE_LT_CHECK

#endif  // CUDART_VERSION >= 12090

}  // namespace

// q [padded_rows, cols] (E4M3 bytes) and scales [ceil(cols/128), padded_rows] (float32) of x [rows, cols] (dtype F32,
// F16 or BF16), quantised per (row, 128-column group) as the file's header says; rows ≥ `rows` are zeros.
MLNODE_API mlnode_status mlnode_fp8_quantize_groups(const void* x, int64_t rows, int64_t cols, int32_t dtype,
                                                    int64_t padded_rows, void* q, void* scales, void* stream) {
  const char* entry = "mlnode_fp8_quantize_groups";
  if (x == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x is null", entry);
  if (q == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: q is null", entry);
  if (scales == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: scales is null", entry);
  if (rows < 0 || rows > INT_MAX) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: rows %lld is outside [0, %d]", entry, (long long)rows, INT_MAX);
  if (cols < 0 || cols > INT_MAX - kGroup)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: cols %lld is outside [0, %d]", entry, (long long)cols, INT_MAX - kGroup);
  if (padded_rows < rows || padded_rows > INT_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: padded_rows %lld is outside [rows %lld, %d]", entry, (long long)padded_rows,
                        (long long)rows, INT_MAX);
  if (padded_rows == 0 || cols == 0) return MLNODE_OK;

  const int groups = (int)((cols + kGroup - 1) / kGroup);
  const long long grid = ((long long)padded_rows * groups + kWarps - 1) / kWarps;
  if (grid > INT_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: %lld rows of %lld columns are more groups than one launch covers", entry,
                        (long long)padded_rows, (long long)cols);
  const bool packed = cols % 4 == 0 && aligned(q, 4);
  return mlnode::dispatch_float((mlnode_dtype)dtype, entry, [&](auto zero) {
    using T = decltype(zero);
    quantize_groups_kernel<T><<<(unsigned)grid, kThreads, 0, (cudaStream_t)stream>>>(
        static_cast<const T*>(x), (int)rows, (int)cols, (int)padded_rows, groups, packed, static_cast<uint8_t*>(q),
        static_cast<float*>(scales));
    return mlnode::check_launch(entry);
  });
}

// OK when `device` (-1: the current device) runs mlnode_fp8_block_gemm; MLNODE_UNSUPPORTED (the reason in
// mlnode_last_error) when this build, the GPU or the loaded cuBLASLt cannot.
MLNODE_API mlnode_status mlnode_fp8_block_gemm_available(int32_t device) {
#if CUDART_VERSION >= 12090
  const char* entry = "mlnode_fp8_block_gemm_available";
  if (device < 0) {
    const cudaError_t error = cudaGetDevice(&device);
    if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "%s: cudaGetDevice: %s", entry, cudaGetErrorString(error));
  }
  return lt_support(entry, device);
#else
  return mlnode::fail(MLNODE_UNSUPPORTED, "mlnode_fp8_block_gemm_available: built with CUDA runtime %d; block-scaled FP8 GEMMs need 12090",
                      CUDART_VERSION);
#endif
}

// y [rows, out_features] (dtype F32, F16 or BF16) = (xq × x_scales) · (weight × weight_scales)ᵀ with float32
// accumulation: xq [rows, in_features] and x_scales [in_features/128, rows] as mlnode_fp8_quantize_groups writes them
// (rows padded to a multiple of 4), weight [out_features, in_features] E4M3 and its scale_inv
// [ceil(out_features/128), in_features/128] in 128×128 blocks. Needs rows a positive multiple of 4, in_features a
// multiple of 512 (whole groups, and a scale row stride that is a multiple of 4), out_features a multiple of 16, and
// every buffer 16-byte aligned. Runs on the current device, on `stream`.
MLNODE_API mlnode_status mlnode_fp8_block_gemm(const void* xq, const void* x_scales, const void* weight,
                                               const void* weight_scales, int64_t rows, int64_t in_features,
                                               int64_t out_features, void* y, int32_t dtype, void* stream) {
  const char* entry = "mlnode_fp8_block_gemm";
  if (xq == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: xq is null", entry);
  if (x_scales == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: x_scales is null", entry);
  if (weight == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight is null", entry);
  if (weight_scales == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: weight_scales is null", entry);
  if (y == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: y is null", entry);
  if (rows <= 0 || rows > INT_MAX || rows % 4 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: rows %lld is not a positive multiple of 4 up to %d", entry, (long long)rows, INT_MAX);
  if (in_features <= 0 || in_features > INT_MAX || in_features % 512 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: in_features %lld is not a positive multiple of 512 up to %d", entry,
                        (long long)in_features, INT_MAX);
  if (out_features <= 0 || out_features > INT_MAX || out_features % 16 != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: out_features %lld is not a positive multiple of 16 up to %d", entry,
                        (long long)out_features, INT_MAX);
  const void* buffers[] = {xq, x_scales, weight, weight_scales, y};
  const char* names[] = {"xq", "x_scales", "weight", "weight_scales", "y"};
  for (int i = 0; i < 5; i++)
    if (!aligned(buffers[i], 16)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: %s is not 16-byte aligned", entry, names[i]);
#if CUDART_VERSION >= 12090
  cudaDataType_t type;
  switch (dtype) {
    case MLNODE_F32: type = CUDA_R_32F; break;
    case MLNODE_F16: type = CUDA_R_16F; break;
    case MLNODE_BF16: type = CUDA_R_16BF; break;
    default: return mlnode::fail(MLNODE_UNSUPPORTED, "%s: element type %d is not a floating type", entry, (int)dtype);
  }
  int device = 0;
  const cudaError_t error = cudaGetDevice(&device);
  if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "%s: cudaGetDevice: %s", entry, cudaGetErrorString(error));
  if (mlnode_status status = lt_support(entry, device); status != MLNODE_OK) return status;
  LtDevice lt;
  if (mlnode_status status = lt_device(entry, device, &lt); status != MLNODE_OK) return status;
  return lt_gemm(entry, lt, xq, x_scales, weight, weight_scales, rows, in_features, out_features, y, type, (cudaStream_t)stream);
#else
  (void)dtype;
  (void)stream;
  return mlnode::fail(MLNODE_UNSUPPORTED, "%s: built with CUDA runtime %d; block-scaled FP8 GEMMs need 12090", entry, CUDART_VERSION);
#endif
}
