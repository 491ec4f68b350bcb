// Flat C ABI of libmlnode_kernels: every entry point returns an mlnode_status; on failure the
// message is available from mlnode_last_error() on the same thread. Nothing here aborts the process.
//
// Conventions shared by every kernel entry point:
// - tensors are raw device pointers to contiguous data (the caller adds the storage offset);
// - `stream` is the cudaStream_t to launch on, normally mlnode_current_stream()'s;
// - element types are mlnode_dtype values; an unsupported combination returns MLNODE_UNSUPPORTED;
// - launches are asynchronous: a status of MLNODE_OK means the work was queued without error.
#pragma once
#include <stdint.h>

#define MLNODE_API extern "C" __attribute__((visibility("default")))

typedef enum mlnode_status {
  MLNODE_OK = 0,
  MLNODE_INVALID_ARGUMENT = 1,
  MLNODE_CUDA_ERROR = 2,
  MLNODE_UNSUPPORTED = 3,
} mlnode_status;

// Element types, numbered like libtorch's ScalarType so C# passes tensor.dtype through unchanged.
typedef enum mlnode_dtype {
  MLNODE_U8 = 0,
  MLNODE_I32 = 3,
  MLNODE_I64 = 4,
  MLNODE_F16 = 5,
  MLNODE_F32 = 6,
  MLNODE_BF16 = 15,
} mlnode_dtype;

// Version of this ABI; the C# bindings refuse a library whose version differs.
MLNODE_API int32_t mlnode_abi_version(void);

// The message of the last failed call on this thread ("" when none).
MLNODE_API const char* mlnode_last_error(void);

// 1 when the library was built against libtorch's headers (MLNODE_TORCH_DIR), else 0.
MLNODE_API int32_t mlnode_with_torch(void);

// Number of CUDA devices the library's runtime sees (0 without a driver or GPU).
MLNODE_API mlnode_status mlnode_device_count(int32_t* count);

// libtorch's current CUDA stream on the current device when the library was built with MLNODE_TORCH_DIR;
// otherwise the legacy default stream (null), which is libtorch's stream while nothing selects another.
MLNODE_API mlnode_status mlnode_current_stream(void** stream);

// A mark in libtorch's current stream after the work queued there so far (a CUDA event): the host waits for that work
// without waiting for what is queued after it (the next decode step), e.g. for an asynchronous copy to pinned memory.
MLNODE_API mlnode_status mlnode_mark_record(void** mark);
MLNODE_API mlnode_status mlnode_mark_wait(void* mark);
MLNODE_API mlnode_status mlnode_mark_destroy(void* mark);

// CUDA graphs of libtorch ops (MLNODE_TORCH_DIR builds; otherwise MLNODE_UNSUPPORTED). create → enter (this
// thread's libtorch stream becomes the graph's side stream, after the work queued so far) → warm-up ops →
// capture_begin → the ops → capture_end → exit (back to the previous stream, which waits for the side stream);
// replay launches the captured ops on this thread's current stream. Tensors the captured ops read or wrote must
// stay allocated while the graph lives.
MLNODE_API mlnode_status mlnode_graph_create(void** graph);
MLNODE_API mlnode_status mlnode_graph_enter(void* graph);
MLNODE_API mlnode_status mlnode_graph_capture_begin(void* graph);
MLNODE_API mlnode_status mlnode_graph_capture_end(void* graph);
MLNODE_API mlnode_status mlnode_graph_exit(void* graph);
MLNODE_API mlnode_status mlnode_graph_replay(void* graph);
MLNODE_API mlnode_status mlnode_graph_destroy(void* graph);

namespace mlnode {
// Records a failure for mlnode_last_error and returns its status, so call sites read `return fail(...)`.
mlnode_status fail(mlnode_status status, const char* format, ...);
}  // namespace mlnode
