// PoC v2 input embeddings generated on the device straight into the activation dtype: bit for bit
// PocInputs.FillBatch (src/MLNode.Protocol/Poc) followed by a round-to-nearest-even cast, as libtorch's
// .to(dtype) does it.
//
// Each nonce's L·d values are one normal stream (weak seeding) or eight segment streams of S = ceil(L·d/8)
// values, the last shorter, each a normal stream of its own length (poc_stronger_rng). The seeds are SHA-256
// words and come from the host (PocSeeds); the kernel only runs the counter-based generator.
#include <limits.h>

#include "mlnode_cuda.cuh"
#include "poc_math.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kStrongStreamsLog2 = 3;  // eight sub-seeds per nonce
constexpr int kMaxGridY = 65535;

// Grid row r (y, strided) is stream r & (2^streams_log2 − 1) of nonce r >> streams_log2. Thread x computes
// pair j of that stream and writes element j (cosine half) and element pairs + j (sine half, dropped for the
// last pair of an odd length). Consecutive threads write consecutive elements of both halves: stores coalesce.
template <typename T>
__global__ void poc_inputs_kernel(const uint32_t* __restrict__ seeds, int streams_log2, int rows, int per_nonce,
                                  int segment, T* __restrict__ out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  for (int row = blockIdx.y; row < rows; row += gridDim.y) {
    const long long start = static_cast<long long>(row & ((1 << streams_log2) - 1)) * segment;
    if (start >= per_nonce) continue;  // strong seeding with L·d < 8·S: the last segments are empty
    const int length = static_cast<int>(min(static_cast<long long>(segment), per_nonce - start));
    const int pairs = length / 2 + (length & 1);
    if (j >= pairs) continue;

    float cosine, sine;
    mlnode::poc::box_muller(seeds[row], static_cast<uint32_t>(j), static_cast<uint32_t>(pairs), cosine, sine);
    T* stream = out + static_cast<long long>(row >> streams_log2) * per_nonce + start;
    stream[j] = mlnode::from_float<T>(cosine);
    if (pairs + j < length) stream[pairs + j] = mlnode::from_float<T>(sine);
  }
}

}  // namespace

// Fills out [batch, seq_len, hidden] (contiguous, dtype f32/f16/bf16) with the inputs of `batch` nonces.
// seeds: device array of uint32, nonce-major: one seed per nonce (strong = 0, PocSeeds.Input) or the eight
// sub-seeds of each nonce (strong = 1, PocSeeds.StrongInput).
MLNODE_API mlnode_status mlnode_poc_inputs_fill(const uint32_t* seeds, int32_t strong, int32_t batch, int32_t seq_len,
                                                int32_t hidden, void* out, int32_t dtype, void* stream) {
  if (seeds == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: seeds is null");
  if (out == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: out is null");
  if (strong != 0 && strong != 1)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: strong must be 0 or 1, got %d", strong);
  if (batch <= 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: batch must be positive, got %d", batch);
  if (seq_len <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: seq_len must be positive, got %d", seq_len);
  if (hidden <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: hidden must be positive, got %d", hidden);
  const long long per_nonce = static_cast<long long>(seq_len) * hidden;
  if (per_nonce > INT_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: seq_len·hidden = %lld exceeds 2^31 − 1", per_nonce);

  const int streams_log2 = strong ? kStrongStreamsLog2 : 0;
  const int streams = 1 << streams_log2;
  const long long rows = static_cast<long long>(batch) * streams;
  if (rows > INT_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "mlnode_poc_inputs_fill: batch %d has too many streams", batch);
  const int segment = static_cast<int>((per_nonce + streams - 1) / streams);
  const int pairs = segment / 2 + (segment & 1);
  const dim3 grid((pairs + kThreads - 1) / kThreads, static_cast<unsigned>(rows < kMaxGridY ? rows : kMaxGridY));

  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "mlnode_poc_inputs_fill", [&](auto zero) {
    using T = decltype(zero);
    poc_inputs_kernel<T><<<grid, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        seeds, streams_log2, static_cast<int>(rows), static_cast<int>(per_nonce), segment, static_cast<T*>(out));
    return mlnode::check_launch("poc_inputs_kernel");
  });
}
