// Helpers shared by the kernels in kernels/*.cu: launch checks that turn CUDA errors into statuses,
// and typed loads/stores for the element types of mlnode_dtype.
#pragma once
#include <stdint.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "mlnode_abi.h"

namespace mlnode {

// After a launch: a configuration or earlier asynchronous error becomes a status with the kernel's name.
inline mlnode_status check_launch(const char* kernel) {
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return fail(MLNODE_CUDA_ERROR, "%s: %s", kernel, cudaGetErrorString(error));
  return MLNODE_OK;
}

// The status of a launch made through cudaLaunchKernelEx (launch_chained), which reports its own error.
inline mlnode_status check_launch(const char* kernel, cudaError_t launched) {
  if (launched != cudaSuccess) {
    cudaGetLastError();
    return fail(MLNODE_CUDA_ERROR, "%s: %s", kernel, cudaGetErrorString(launched));
  }
  return check_launch(kernel);
}

template <typename T> __device__ __forceinline__ float load_float(const T* p, long long i);
template <> __device__ __forceinline__ float load_float(const float* p, long long i) { return p[i]; }
template <> __device__ __forceinline__ float load_float(const __half* p, long long i) { return __half2float(p[i]); }
template <> __device__ __forceinline__ float load_float(const __nv_bfloat16* p, long long i) { return __bfloat162float(p[i]); }

// Round-to-nearest-even conversion, the same rounding libtorch's .to(dtype) applies.
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float(float v) { return v; }
template <> __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }

// Elements of T in one 16-byte vector.
template <typename T> constexpr int kPerVector = 16 / sizeof(T);

// One 16-byte vector of T, filled element by element and stored at once.
template <typename T>
union Vector {
  uint4 raw;
  T values[kPerVector<T>];
};

// The float values of one 16-byte vector of T (exact: a bf16 is the high half of the float it stands for).
template <typename T> __device__ __forceinline__ void unpack(const uint4& raw, float (&x)[kPerVector<T>]);
template <> __device__ __forceinline__ void unpack<float>(const uint4& raw, float (&x)[4]) {
  x[0] = __uint_as_float(raw.x);
  x[1] = __uint_as_float(raw.y);
  x[2] = __uint_as_float(raw.z);
  x[3] = __uint_as_float(raw.w);
}
template <> __device__ __forceinline__ void unpack<__nv_bfloat16>(const uint4& raw, float (&x)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    x[2 * i] = __uint_as_float(words[i] << 16);
    x[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}
template <> __device__ __forceinline__ void unpack<__half>(const uint4& raw, float (&x)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    x[2 * i] = __half2float(__ushort_as_half((unsigned short)(words[i] & 0xffffu)));
    x[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(words[i] >> 16)));
  }
}

// Sum over the calling warp in a fixed butterfly order: every lane gets the same, reproducible bits.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Asynchronous 16-byte copies global → shared (sm_80+): a thread issues many, commits them as a group, and waits
// until at most `pending` of its committed groups are in flight; completed copies are visible to the issuing thread
// (other threads see them after a barrier).
__device__ __forceinline__ void cp_async16(void* shared, const void* global) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(address), "l"(global) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int pending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(pending) : "memory"); }

// How many blocks of `Kernel` the current device runs at once (SMs × resident blocks per SM), for grids sized
// to the GPU. Found once per device and kernel, so a kernel always launches with the same `threads` and `shared`
// (dynamic shared memory bytes); the first call also grants the kernel more than the default 48 KiB of it.
template <auto Kernel>
mlnode_status resident_blocks(const char* what, int threads, int shared, int& blocks) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices];  // 0 until found
  int device = 0;
  cudaError_t error = cudaGetDevice(&device);
  if (error == cudaSuccess && device < kMaxDevices && (blocks = known[device].load(std::memory_order_relaxed)) > 0)
    return MLNODE_OK;
  int sms = 0, per_sm = 0;
  if (error == cudaSuccess && shared > 48 * 1024)
    error = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (error == cudaSuccess) error = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, threads, shared);
  if (error != cudaSuccess) return fail(MLNODE_CUDA_ERROR, "%s: sizing the grid: %s", what, cudaGetErrorString(error));
  if (per_sm < 1)
    return fail(MLNODE_UNSUPPORTED, "%s: a block of %d threads and %d bytes of shared memory does not fit an SM", what, threads, shared);
  blocks = sms * per_sm;
  if (device < kMaxDevices) known[device].store(blocks, std::memory_order_relaxed);
  return MLNODE_OK;
}

// Programmatic dependent launch (Hopper and newer). A decode step is a chain of small kernels, each waiting for the
// one before; launched chained, a kernel's blocks start while its predecessor finishes and read what no kernel writes
// (a GEMV's first weights) before they wait. Rules for a chained kernel: it calls wait_for_prior_grids() before it reads
// anything an earlier kernel wrote and before it writes anything, and let_dependents_start() once its own blocks are
// all placed (at its start: its successors then wait on the SMs this kernel leaves free). The wait returns when the
// predecessor has completed and its writes are visible; each chained kernel waits, so everything before it has too.
__device__ __forceinline__ void wait_for_prior_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void let_dependents_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether chained launches overlap on the current device: compute capability 9 or newer, unless MLNODE_PDL=0 (for
// measuring what the overlap is worth). Elsewhere a chained launch is a plain one.
inline bool chained_launches() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices];  // 0 unknown, 1 no, 2 yes
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device >= kMaxDevices) return false;
  int state = known[device].load(std::memory_order_relaxed);
  if (state == 0) {
    int major = 0;
    const char* setting = std::getenv("MLNODE_PDL");
    const bool off = setting != nullptr && std::strcmp(setting, "0") == 0;
    state = !off && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) == cudaSuccess && major >= 9 ? 2 : 1;
    known[device].store(state, std::memory_order_relaxed);
  }
  return state == 2;
}

// Launches `kernel` so that it may start while the kernel before it in `stream` finishes (see wait_for_prior_grids).
template <typename... Params, typename... Args>
cudaError_t launch_chained(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute overlap[1];
  overlap[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared;
  config.stream = stream;
  config.attrs = overlap;
  config.numAttrs = chained_launches() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

// Calls f(T{}) with T the CUDA type of a floating dtype (the argument only carries the type); others are unsupported.
template <typename F> mlnode_status dispatch_float(mlnode_dtype dtype, const char* what, F&& f) {
  switch (dtype) {
    case MLNODE_F32: return f(float{});
    case MLNODE_F16: return f(__half{});
    case MLNODE_BF16: return f(__nv_bfloat16{});
    default: return fail(MLNODE_UNSUPPORTED, "%s: element type %d is not a floating type", what, (int)dtype);
  }
}

}  // namespace mlnode
