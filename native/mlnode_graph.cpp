// CUDA graphs of libtorch work issued from .NET. TorchSharp launches every op separately at ~25 µs of host
// time each, so a decoder step of ~800 small ops is bound by the host; captured once and replayed, it is
// one launch. The ops are captured the way torch.cuda.graph does it: on a side stream made libtorch's
// current stream for this thread, with libtorch's CUDAGraph owning the private memory pool the captured
// ops allocate from. Needs libtorch's headers (MLNODE_TORCH_DIR); without them every call is unsupported.
#include "mlnode_abi.h"

#ifdef MLNODE_WITH_TORCH
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <exception>
#include <optional>

namespace {
struct Graph {
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  std::optional<c10::cuda::CUDAStream> outer;
  cudaEvent_t event = nullptr;
};

// Makes `waiter` wait for the work queued on `producer` so far, without blocking the host.
mlnode_status order(Graph& g, cudaStream_t producer, cudaStream_t waiter) {
  cudaError_t error = cudaEventRecord(g.event, producer);
  if (error == cudaSuccess) error = cudaStreamWaitEvent(waiter, g.event, 0);
  return error == cudaSuccess ? MLNODE_OK : mlnode::fail(MLNODE_CUDA_ERROR, "stream ordering: %s", cudaGetErrorString(error));
}

template <typename F>
mlnode_status guarded(const char* what, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return mlnode::fail(MLNODE_CUDA_ERROR, "%s: %s", what, e.what());
  }
}
}  // namespace

MLNODE_API mlnode_status mlnode_graph_create(void** graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  return guarded("graph create", [&] {
    auto* g = new Graph();
    cudaError_t error = cudaEventCreateWithFlags(&g->event, cudaEventDisableTiming);
    if (error != cudaSuccess) {
      delete g;
      return mlnode::fail(MLNODE_CUDA_ERROR, "cudaEventCreate: %s", cudaGetErrorString(error));
    }
    *graph = g;
    return MLNODE_OK;
  });
}

MLNODE_API mlnode_status mlnode_graph_enter(void* graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  auto& g = *static_cast<Graph*>(graph);
  if (g.outer) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "the graph's stream is already entered");
  return guarded("graph enter", [&] {
    g.outer = c10::cuda::getCurrentCUDAStream();
    if (auto status = order(g, g.outer->stream(), g.side.stream()); status != MLNODE_OK) return status;
    c10::cuda::setCurrentCUDAStream(g.side);
    return MLNODE_OK;
  });
}

MLNODE_API mlnode_status mlnode_graph_capture_begin(void* graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  auto& g = *static_cast<Graph*>(graph);
  if (!g.outer) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "enter the graph's stream before capturing");
  // Thread-local capture: other threads' CUDA calls (a PoC batch, a metrics read) neither join nor break it.
  return guarded("graph capture begin", [&] {
    g.graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    return MLNODE_OK;
  });
}

MLNODE_API mlnode_status mlnode_graph_capture_end(void* graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  return guarded("graph capture end", [&] {
    static_cast<Graph*>(graph)->graph.capture_end();
    return MLNODE_OK;
  });
}

MLNODE_API mlnode_status mlnode_graph_exit(void* graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  auto& g = *static_cast<Graph*>(graph);
  if (!g.outer) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "the graph's stream is not entered");
  return guarded("graph exit", [&] {
    c10::cuda::setCurrentCUDAStream(*g.outer);
    auto status = order(g, g.side.stream(), g.outer->stream());
    g.outer.reset();
    return status;
  });
}

MLNODE_API mlnode_status mlnode_graph_replay(void* graph) {
  if (graph == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "graph is null");
  return guarded("graph replay", [&] {
    static_cast<Graph*>(graph)->graph.replay();
    return MLNODE_OK;
  });
}

MLNODE_API mlnode_status mlnode_graph_destroy(void* graph) {
  if (graph == nullptr) return MLNODE_OK;
  return guarded("graph destroy", [&] {
    auto* g = static_cast<Graph*>(graph);
    cudaEventDestroy(g->event);
    delete g;
    return MLNODE_OK;
  });
}
#else
MLNODE_API mlnode_status mlnode_graph_create(void** graph) {
  return mlnode::fail(MLNODE_UNSUPPORTED, "CUDA graphs need libtorch: build with -DMLNODE_TORCH_DIR");
}
MLNODE_API mlnode_status mlnode_graph_enter(void*) { return MLNODE_UNSUPPORTED; }
MLNODE_API mlnode_status mlnode_graph_capture_begin(void*) { return MLNODE_UNSUPPORTED; }
MLNODE_API mlnode_status mlnode_graph_capture_end(void*) { return MLNODE_UNSUPPORTED; }
MLNODE_API mlnode_status mlnode_graph_exit(void*) { return MLNODE_UNSUPPORTED; }
MLNODE_API mlnode_status mlnode_graph_replay(void*) { return MLNODE_UNSUPPORTED; }
MLNODE_API mlnode_status mlnode_graph_destroy(void*) { return MLNODE_OK; }
#endif
