// Flat C ABI of libmlnode_kernels: every entry point returns an mlnode_status; on failure the
// message is available from mlnode_last_error() on the same thread. Nothing here aborts the process.
#pragma once
#include <stdint.h>

#define MLNODE_API extern "C" __attribute__((visibility("default")))

typedef enum mlnode_status {
  MLNODE_OK = 0,
  MLNODE_INVALID_ARGUMENT = 1,
  MLNODE_CUDA_ERROR = 2,
  MLNODE_UNSUPPORTED = 3,
} mlnode_status;

// Version of this ABI; the C# bindings refuse a library whose major version differs.
MLNODE_API int32_t mlnode_abi_version(void);

// The message of the last failed call on this thread ("" when none).
MLNODE_API const char* mlnode_last_error(void);

namespace mlnode {
// Records a failure for mlnode_last_error and returns its status, so call sites read `return fail(...)`.
mlnode_status fail(mlnode_status status, const char* format, ...);
}  // namespace mlnode
