// Seeded expert routing for Wan2.2 PoC (docs/wan-poc-routing.md): each nonce's timestep and expert from its
// seed, a stable grouping of the batch by expert, and the row moves into and out of the grouped order, so
// each expert runs once per batch on a contiguous slice. C# oracles: MLNode.Protocol.Poc.WanRouting
// (derivation, grouping) and index_select / index_copy_ (row moves).
#include <algorithm>

#include "mlnode_cuda.cuh"
#include "poc_math.cuh"

namespace {

constexpr int kMaxTimesteps = 256;
constexpr int kMaxBatch = 1024;
constexpr int kTrainTimesteps = 1000;
constexpr int kThreads = 256;
// Blocks of a row move in total over all rows: a few waves on any GPU, rows share them evenly.
constexpr long long kMoveBlocks = 4096;

// The timestep grid and boundary travel by value in the kernel's parameters: no device copy for 1 KB.
struct Schedule {
  int32_t timesteps[kMaxTimesteps];
  int32_t count;
  int32_t boundary;
};

__global__ void derive_kernel(const uint32_t* __restrict__ seeds, int32_t batch, Schedule schedule,
                              int64_t* __restrict__ timesteps, int64_t* __restrict__ experts) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= batch) return;
  // floor(h · S / 2^32): the hash read as a fraction of 2^32, scaled to the grid; exact in 64 bits.
  const uint32_t hash = mlnode::poc::mix(0u, seeds[row]);
  const int index = (int)(((uint64_t)hash * (uint32_t)schedule.count) >> 32);
  const int32_t t = schedule.timesteps[index];
  timesteps[row] = t;
  experts[row] = t >= schedule.boundary ? 0 : 1;  // 0: high-noise expert, 1: low-noise expert
}

// One block, one thread per row. Each row counts the expert-0 rows before it, which gives its slot in the
// stable partition without any ordering that depends on scheduling.
__global__ void __launch_bounds__(kMaxBatch)
    group_kernel(const int64_t* __restrict__ experts, int32_t batch, int64_t* __restrict__ order,
                 int64_t* __restrict__ counts) {
  __shared__ unsigned char first_group[kMaxBatch];
  const int row = threadIdx.x;
  if (row < batch) first_group[row] = experts[row] == 0;
  __syncthreads();
  if (row >= batch) return;
  int before = 0;
  int total = 0;
  for (int other = 0; other < batch; ++other) {
    total += first_group[other];
    if (other < row) before += first_group[other];
  }
  const int slot = first_group[row] ? before : total + (row - before);
  order[slot] = row;
  if (row == 0) {
    counts[0] = total;
    counts[1] = batch - total;
  }
}

// Grouped row j is batch row order[j]: gather copies rows[order[j]] → grouped[j], scatter grouped[j] → rows[order[j]].
// blockIdx.y is j; each destination row is written by one set of threads, once.
template <typename Unit, bool kScatter>
__global__ void __launch_bounds__(kThreads)
    move_rows_kernel(const Unit* __restrict__ source, Unit* __restrict__ destination,
                     const int64_t* __restrict__ order, int32_t batch, long long units_per_row) {
  const int j = blockIdx.y;
  const long long row = order[j];
  if (row < 0 || row >= batch) return;  // not a permutation of the batch: write nothing rather than out of bounds
  const Unit* from = source + (kScatter ? j : row) * units_per_row;
  Unit* to = destination + (kScatter ? row : j) * units_per_row;
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < units_per_row;
       i += (long long)gridDim.x * blockDim.x)
    to[i] = from[i];
}

int element_size(int32_t dtype) {
  switch (dtype) {
    case MLNODE_U8: return 1;
    case MLNODE_F16:
    case MLNODE_BF16: return 2;
    case MLNODE_I32:
    case MLNODE_F32: return 4;
    case MLNODE_I64: return 8;
    default: return 0;
  }
}

template <typename Unit, bool kScatter>
mlnode_status launch_move(const void* source, void* destination, const int64_t* order, int32_t batch,
                          long long row_bytes, cudaStream_t stream) {
  const long long units = row_bytes / (long long)sizeof(Unit);
  const long long blocks = std::max(1LL, std::min((units + kThreads - 1) / kThreads, kMoveBlocks / batch));
  move_rows_kernel<Unit, kScatter><<<dim3((unsigned)blocks, (unsigned)batch), kThreads, 0, stream>>>(
      (const Unit*)source, (Unit*)destination, order, batch, units);
  return mlnode::check_launch(kScatter ? "move_rows_kernel (scatter)" : "move_rows_kernel (gather)");
}

// Copies in the widest unit (16, 8, 4, 2 or 1 bytes) that divides the row and both base addresses.
template <bool kScatter>
mlnode_status move_rows(const char* name, const void* source, void* destination, const int64_t* order,
                        int32_t batch, int64_t row_elements, int32_t dtype, void* stream) {
  if (source == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: source is null", name);
  if (destination == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: destination is null", name);
  if (source == destination)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: source and destination are the same buffer (rows would overwrite each other)", name);
  if (order == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: order is null", name);
  if (batch < 1 || batch > kMaxBatch)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: batch %d is outside [1, %d]", name, batch, kMaxBatch);
  if (row_elements < 1)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: row_elements %lld is not positive", name, (long long)row_elements);
  const int size = element_size(dtype);
  if (size == 0) return mlnode::fail(MLNODE_UNSUPPORTED, "%s: element type %d is not supported", name, dtype);
  const long long row_bytes = row_elements * size;
  const unsigned long long alignment = (unsigned long long)row_bytes | (uintptr_t)source | (uintptr_t)destination;
  const auto s = (cudaStream_t)stream;
  if (alignment % 16 == 0) return launch_move<uint4, kScatter>(source, destination, order, batch, row_bytes, s);
  if (alignment % 8 == 0) return launch_move<uint2, kScatter>(source, destination, order, batch, row_bytes, s);
  if (alignment % 4 == 0) return launch_move<uint32_t, kScatter>(source, destination, order, batch, row_bytes, s);
  if (alignment % 2 == 0) return launch_move<uint16_t, kScatter>(source, destination, order, batch, row_bytes, s);
  return launch_move<uint8_t, kScatter>(source, destination, order, batch, row_bytes, s);
}

}  // namespace

// timesteps[i] and experts[i] (int64, device) of the nonce whose seed32 is seeds[i] (uint32, device).
// host_timesteps[0..count) is the schedule's grid in host memory, each entry in [0, 1000); the expert is
// 0 (high-noise) for t ≥ boundary, else 1 (low-noise).
MLNODE_API mlnode_status mlnode_wan_routing_derive(const uint32_t* seeds, int32_t batch, const int32_t* host_timesteps,
                                                   int32_t count, int32_t boundary, int64_t* timesteps,
                                                   int64_t* experts, void* stream) {
  if (seeds == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: seeds is null");
  if (batch < 1 || batch > kMaxBatch)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: batch %d is outside [1, %d]", batch, kMaxBatch);
  if (host_timesteps == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: host_timesteps is null");
  if (count < 1 || count > kMaxTimesteps)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: count %d is outside [1, %d]", count, kMaxTimesteps);
  if (boundary < 0 || boundary > kTrainTimesteps)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: boundary %d is outside [0, %d]", boundary, kTrainTimesteps);
  if (timesteps == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: timesteps is null");
  if (experts == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: experts is null");
  Schedule schedule{};
  for (int i = 0; i < count; ++i) {
    if (host_timesteps[i] < 0 || host_timesteps[i] >= kTrainTimesteps)
      return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_derive: host_timesteps[%d] = %d is outside [0, %d)", i,
                          host_timesteps[i], kTrainTimesteps);
    schedule.timesteps[i] = host_timesteps[i];
  }
  schedule.count = count;
  schedule.boundary = boundary;
  derive_kernel<<<(batch + kThreads - 1) / kThreads, kThreads, 0, (cudaStream_t)stream>>>(seeds, batch, schedule,
                                                                                           timesteps, experts);
  return mlnode::check_launch("derive_kernel");
}

// order[j] = the batch row that goes to grouped slot j: the rows of expert 0 in batch order, then the others in
// batch order; counts[0], counts[1] = rows of expert 0 and of the others (all int64).
MLNODE_API mlnode_status mlnode_wan_routing_group(const int64_t* experts, int32_t batch, int64_t* order, int64_t* counts,
                                                  void* stream) {
  if (experts == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_group: experts is null");
  if (batch < 1 || batch > kMaxBatch)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_group: batch %d is outside [1, %d]", batch, kMaxBatch);
  if (order == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_group: order is null");
  if (counts == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "wan_routing_group: counts is null");
  group_kernel<<<1, batch, 0, (cudaStream_t)stream>>>(experts, batch, order, counts);
  return mlnode::check_launch("group_kernel");
}

// grouped[j] = rows[order[j]] for rows [batch, row_elements] of `dtype` (any ABI type: a move copies bits).
MLNODE_API mlnode_status mlnode_wan_routing_permute(const void* rows, void* grouped, const int64_t* order, int32_t batch,
                                                    int64_t row_elements, int32_t dtype, void* stream) {
  return move_rows<false>("wan_routing_permute", rows, grouped, order, batch, row_elements, dtype, stream);
}

// rows[order[j]] = grouped[j]: undoes mlnode_wan_routing_permute.
MLNODE_API mlnode_status mlnode_wan_routing_unpermute(const void* grouped, void* rows, const int64_t* order,
                                                      int32_t batch, int64_t row_elements, int32_t dtype,
                                                      void* stream) {
  return move_rows<true>("wan_routing_unpermute", grouped, rows, order, batch, row_elements, dtype, stream);
}
