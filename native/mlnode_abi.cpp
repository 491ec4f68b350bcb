#include "mlnode_abi.h"

#include <cstdarg>
#include <cstdio>

namespace {
thread_local char last_error[1024] = "";
}

MLNODE_API int32_t mlnode_abi_version(void) { return 1; }

MLNODE_API const char* mlnode_last_error(void) { return last_error; }

namespace mlnode {
mlnode_status fail(mlnode_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}
}  // namespace mlnode
