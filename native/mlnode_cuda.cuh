// Helpers shared by the kernels in kernels/*.cu: launch checks that turn CUDA errors into statuses,
// and typed loads/stores for the element types of mlnode_dtype.
#pragma once
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

template <typename T> __device__ __forceinline__ float load_float(const T* p, long long i);
template <> __device__ __forceinline__ float load_float(const float* p, long long i) { return p[i]; }
template <> __device__ __forceinline__ float load_float(const __half* p, long long i) { return __half2float(p[i]); }
template <> __device__ __forceinline__ float load_float(const __nv_bfloat16* p, long long i) { return __bfloat162float(p[i]); }

// Round-to-nearest-even conversion, the same rounding libtorch's .to(dtype) applies.
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float(float v) { return v; }
template <> __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }

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
