// Portable DiT noise: torch.randn(shape, generator = CUDA generator seeded `seed`, dtype = float32) exactly
// as PyTorch computes it on a 132-SM Hopper (H100 SXM, H200), on any GPU.
//
// PyTorch's distribution kernel (aten/src/ATen/native/cuda/DistributionTemplates.h) launches
// G = min(ceil(N/256), SMs · maxThreadsPerSM/256) blocks of 256 threads; thread t runs
// curand_init(seed, t, offset) and its k-th curand_normal4 fills elements t + k·4T + i·T (T = 256·G, i = 0…3)
// below N. G, and with it the element → Philox stream mapping, depends on the GPU once N exceeds one wave;
// launching the grid a 132-SM, 2048-threads-per-SM GPU would use (at most 1056 blocks) fixes the mapping, and
// the same cuRAND device code gives the same bits. The C# oracle is MLNode.Protocol.Diffusion.PhiloxNoise.
#include <curand_kernel.h>

#include <algorithm>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 256;
constexpr long long kVirtualBlocks = 132 * (2048 / kThreads);
constexpr int kValuesPerDraw = 4;

__global__ void __launch_bounds__(kThreads)
    philox_normal_kernel(float* __restrict__ noise, long long count, unsigned long long seed, unsigned long long offset) {
  const long long threads = (long long)gridDim.x * blockDim.x;
  const long long thread = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  curandStatePhilox4_32_10_t state;
  curand_init(seed, thread, offset, &state);
  for (long long first = thread; first < count; first += kValuesPerDraw * threads) {
    const float4 draw = curand_normal4(&state);
    const float values[kValuesPerDraw] = {draw.x, draw.y, draw.z, draw.w};
#pragma unroll
    for (int lane = 0; lane < kValuesPerDraw; ++lane) {
      const long long index = first + lane * threads;
      // PyTorch stores rand·std + mean with std 1 and mean 0, which turns a −0 into +0.
      if (index < count) noise[index] = values[lane] + 0.0f;
    }
  }
}

}  // namespace

// Fills `noise` (float32, `count` elements in row-major order) with the stream of a CUDA generator seeded `seed`
// whose philox offset is `offset` (0 when freshly seeded; PyTorch advances it in multiples of 4).
MLNODE_API mlnode_status mlnode_philox_noise_normal(float* noise, int64_t count, uint64_t seed, uint64_t offset,
                                                    void* stream) {
  if (noise == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "philox_noise_normal: noise is null");
  if (count < 0) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "philox_noise_normal: count %lld is negative", (long long)count);
  // PyTorch splits larger tensors into several launches, each with its own philox offset.
  if (count > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "philox_noise_normal: count %lld exceeds 2^31-1", (long long)count);
  if (offset % kValuesPerDraw != 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "philox_noise_normal: offset %llu is not a multiple of %d",
                        (unsigned long long)offset, kValuesPerDraw);
  if (count == 0) return MLNODE_OK;
  const long long blocks = std::min<long long>((count + kThreads - 1) / kThreads, kVirtualBlocks);
  philox_normal_kernel<<<(unsigned)blocks, kThreads, 0, (cudaStream_t)stream>>>(noise, count, seed, offset);
  return mlnode::check_launch("philox_normal_kernel");
}
