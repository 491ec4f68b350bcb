#include "mlnode_abi.h"

#include <cuda_runtime_api.h>
#ifdef MLNODE_WITH_TORCH
#include <c10/cuda/CUDAStream.h>
#endif

#include <cstdarg>
#include <cstdio>

namespace {
thread_local char last_error[1024] = "";
}

MLNODE_API int32_t mlnode_abi_version(void) { return 6; }

MLNODE_API const char* mlnode_last_error(void) { return last_error; }

MLNODE_API int32_t mlnode_with_torch(void) {
#ifdef MLNODE_WITH_TORCH
  return 1;
#else
  return 0;
#endif
}

MLNODE_API mlnode_status mlnode_device_count(int32_t* count) {
  if (count == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "count is null");
  int devices = 0;
  cudaError_t error = cudaGetDeviceCount(&devices);
  if (error == cudaErrorNoDevice || error == cudaErrorInsufficientDriver) {
    cudaGetLastError();
    *count = 0;
    return MLNODE_OK;
  }
  if (error != cudaSuccess)
    return mlnode::fail(MLNODE_CUDA_ERROR, "cudaGetDeviceCount: %s", cudaGetErrorString(error));
  *count = devices;
  return MLNODE_OK;
}

MLNODE_API mlnode_status mlnode_current_stream(void** stream) {
  if (stream == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "stream is null");
#ifdef MLNODE_WITH_TORCH
  try {
    *stream = c10::cuda::getCurrentCUDAStream().stream();
  } catch (const std::exception& e) {
    return mlnode::fail(MLNODE_CUDA_ERROR, "libtorch's current stream: %s", e.what());
  }
#else
  *stream = nullptr;
#endif
  return MLNODE_OK;
}

MLNODE_API mlnode_status mlnode_mark_record(void** mark) {
  if (mark == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mark is null");
  void* stream = nullptr;
  if (auto status = mlnode_current_stream(&stream); status != MLNODE_OK) return status;
  cudaEvent_t event = nullptr;
  cudaError_t error = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
  if (error == cudaSuccess) error = cudaEventRecord(event, static_cast<cudaStream_t>(stream));
  if (error != cudaSuccess) {
    if (event != nullptr) cudaEventDestroy(event);
    return mlnode::fail(MLNODE_CUDA_ERROR, "stream mark: %s", cudaGetErrorString(error));
  }
  *mark = event;
  return MLNODE_OK;
}

MLNODE_API mlnode_status mlnode_mark_wait(void* mark) {
  if (mark == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mark is null");
  cudaError_t error = cudaEventSynchronize(static_cast<cudaEvent_t>(mark));
  return error == cudaSuccess ? MLNODE_OK : mlnode::fail(MLNODE_CUDA_ERROR, "waiting for a stream mark: %s", cudaGetErrorString(error));
}

MLNODE_API mlnode_status mlnode_mark_destroy(void* mark) {
  if (mark != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(mark));
  return MLNODE_OK;
}

namespace mlnode {
mlnode_status fail(mlnode_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}
}  // namespace mlnode
