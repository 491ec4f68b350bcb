#include "mlnode_abi.h"

#include <cuda_runtime_api.h>

#include <cstdarg>
#include <cstdio>

namespace {
thread_local char last_error[1024] = "";
}

MLNODE_API int32_t mlnode_abi_version(void) { return 1; }

MLNODE_API const char* mlnode_last_error(void) { return last_error; }

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

namespace mlnode {
mlnode_status fail(mlnode_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}
}  // namespace mlnode
