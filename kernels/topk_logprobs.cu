// Top-k log-probabilities over the vocabulary, fused: per row of logits [B, V], reading the row once, the
// log-softmax normaliser, the k best tokens with their logprobs, the logprob of a chosen token and the
// argmax. Reference: MLNode.Engines.Llm.Sampling.BatchLogprobs.Reference (log_softmax, topk and gather on
// the same device).
//
// Two launches, so that every SM streams logits even for a handful of rows. Pass 1 cuts each row into
// slices of kSlice elements, one block per (row, slice), and writes each slice's partial: its max m_s,
// Σ exp(x − m_s) and its k best (value, id). Pass 2, one block per row, merges the row's partials:
// L = m + log Σ_s sum_s · exp(m_s − m), and the k best of the slices' k best.
//
// Determinism: which element goes to which thread, and the order of every reduction, depend on V alone
// (never on the GPU, the row's address or timing), so the same logits give the same bits everywhere. Loads
// off the 16-byte grid read the same elements one by one instead of as a vector.
//
// Top-k inside a slice: each warp streams 4096 elements and keeps its k best (lane i holds the i-th) in
// registers. Elements that beat the warp's k-th best are appended to a small shared-memory queue; every 32
// queued candidates are bitonic-sorted and bitonic-merged into the list. Inserting candidates one at a
// time cost ~30 instructions each and dominated the kernel; a merge of 32 costs ~200. The list starts from
// the best element of each lane's first loads, so the bar is high before the queue sees anything.
//
// Order: descending value, ties by the lower token id — a strict total order, so the top-k is unique and
// does not depend on the order candidates arrive in. Values are log_softmax(x / T) computed as libtorch
// computes them on CUDA: x * (1 / T) (its division by a scalar multiplies by the reciprocal), then
// x − (max + log(sum)). The products go through __fmul_rn so the compiler cannot fuse them into a later
// subtraction and round differently from libtorch.
#include <math_constants.h>

#include <cstdint>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kMaxK = 32;                         // one list entry per lane
constexpr int kWarpSpan = 4096;                   // elements one warp of pass 1 streams
constexpr int kSliceWarps = 4;
constexpr int kSlice = kSliceWarps * kWarpSpan;   // elements per pass-1 block: fixed, so the split depends on V only
constexpr int kBatch = 8;                         // 16-byte loads a lane issues before using any
constexpr int kMergeWarps = 8;                    // pass 2: warps that merge a row's slice lists
constexpr unsigned kAll = 0xffffffffu;
constexpr int kNoId = INT32_MAX;                  // sentinel entries (−∞, kNoId) lose to every element of the row

struct Entry {
  float value;
  int id;
};

__device__ __forceinline__ Entry sentinel() { return {-INFINITY, kNoId}; }

// a ranks before b: larger value, or the same value and the lower id.
__device__ __forceinline__ bool before(float av, int aid, float bv, int bid) {
  return av > bv || (av == bv && aid < bid);
}
__device__ __forceinline__ bool before(const Entry& a, const Entry& b) { return before(a.value, a.id, b.value, b.id); }

__device__ __forceinline__ Entry shuffle(const Entry& e, int source) {
  return {__shfl_sync(kAll, e.value, source), __shfl_sync(kAll, e.id, source)};
}

// One step of a bitonic network across the warp: lanes `lane` and `lane ^ stride` compare their entries;
// the lower lane keeps the better one when `descending`, the worse one otherwise.
__device__ __forceinline__ void compare_exchange(Entry& e, int stride, bool descending, int lane) {
  const Entry other = {__shfl_xor_sync(kAll, e.value, stride), __shfl_xor_sync(kAll, e.id, stride)};
  const bool keep_better = ((lane & stride) == 0) == descending;
  if (keep_better ? before(other, e) : before(e, other)) e = other;
}

// Warp-collective: the 32 entries of the lanes, sorted best first (lane i ends with the i-th).
__device__ __forceinline__ void sort_descending(Entry& e, int lane) {
#pragma unroll
  for (int size = 2; size <= 32; size *= 2)
#pragma unroll
    for (int stride = size / 2; stride > 0; stride /= 2) compare_exchange(e, stride, (lane & size) == 0, lane);
}

// Warp-collective: `mine` is this lane's entry of a list sorted best first, `mirrored` the entry 31 − lane
// of another such list. Leaves the best 32 of both lists, sorted: the better of each mirrored pair are
// those 32, in a bitonic order that the half-cleaners then sort.
__device__ __forceinline__ void merge_mirrored(Entry& mine, const Entry& mirrored, int lane) {
  if (before(mirrored, mine)) mine = mirrored;
#pragma unroll
  for (int stride = 16; stride > 0; stride /= 2) compare_exchange(mine, stride, true, lane);
}

// Block-collective: merges the lists of `Warps` warps into warp 0's `mine` through a fixed tree (warp w takes
// in warp w + stride). Each slot of `lists` is written once and read after the barrier that follows it.
template <int Warps>
__device__ __forceinline__ void merge_warps(Entry& mine, Entry (*lists)[32], int warp, int lane) {
  static_assert(Warps >= 2 && (Warps & (Warps - 1)) == 0, "the tree pairs warps");
#pragma unroll
  for (int stride = 1; stride < Warps; stride *= 2) {
    if (warp % (2 * stride) == stride) lists[warp][lane] = mine;
    __syncthreads();
    if (warp % (2 * stride) == 0) merge_mirrored(mine, lists[warp + stride][31 - lane], lane);
  }
}

// The online normaliser: m = max seen, s = Σ exp(x − m). Symmetric in its arguments, so the butterfly
// reductions below leave every lane with the same bits.
__device__ __forceinline__ void combine(float& m, float& s, float om, float os) {
  float nm = fmaxf(m, om);
  if (nm == -INFINITY) return;  // both empty (or all −∞): nothing to add
  float a = m == -INFINITY ? 0.0f : s * expf(m - nm);
  float b = om == -INFINITY ? 0.0f : os * expf(om - nm);
  m = nm;
  s = a + b;
}

__device__ __forceinline__ void combine_warp(float& m, float& s) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    combine(m, s, __shfl_xor_sync(kAll, m, offset), __shfl_xor_sync(kAll, s, offset));
}

// A warp's k best candidates so far, lane i holding the i-th, and the queue of candidates not merged yet.
// Entries at lanes ≥ k are candidates too, sorted, but not necessarily the next best: only lanes < k are exact.
struct WarpTopK {
  Entry mine;
  Entry bar;          // entry k − 1, broadcast: what a candidate must beat
  Entry* queue;       // this warp's 64 shared slots; holds < 32 entries between appends
  int queued;         // warp-uniform
  int k;
  int lane;

  __device__ void init(Entry* queue_, int k_, int lane_) {
    mine = bar = sentinel();
    queue = queue_;
    queued = 0;
    k = k_;
    lane = lane_;
  }

  __device__ __forceinline__ bool admits(float v, int id) const { return before(v, id, bar.value, bar.id); }

  // Warp-collective: the lanes' entries become the list (which must still be empty), sorted.
  __device__ void seed(Entry e) {
    sort_descending(e, lane);
    mine = e;
    bar = shuffle(mine, k - 1);
  }

  // Warp-collective: each lane appends its candidate if it has one; a full 32 are merged at once.
  __device__ __forceinline__ void append(bool take, float v, int id) {
    const unsigned takers = __ballot_sync(kAll, take);
    if (take) queue[queued + __popc(takers & ((1u << lane) - 1))] = {v, id};
    queued += __popc(takers);
    if (queued >= 32) flush();
  }

  // Warp-collective: merges the first ≤ 32 queued candidates into the list and moves the rest (< 32) down.
  __device__ void flush() {
    __syncwarp();  // the other lanes' appends are visible
    Entry c = lane < queued ? queue[lane] : sentinel();
    const int rest = queued > 32 ? queued - 32 : 0;
    if (lane < rest) queue[lane] = queue[32 + lane];  // each lane moves only its own slots
    queued = rest;
    __syncwarp();  // later appends by other lanes land after these reads and moves
    sort_descending(c, lane);
    merge_mirrored(mine, shuffle(c, 31 - lane), lane);
    bar = shuffle(mine, k - 1);
  }
};

template <typename T> constexpr int kPerVector = 16 / sizeof(T);

template <typename T> __device__ __forceinline__ void unpack(const uint4& raw, float (&x)[kPerVector<T>]);
template <> __device__ __forceinline__ void unpack<float>(const uint4& raw, float (&x)[4]) {
  x[0] = __uint_as_float(raw.x);
  x[1] = __uint_as_float(raw.y);
  x[2] = __uint_as_float(raw.z);
  x[3] = __uint_as_float(raw.w);
}
template <> __device__ __forceinline__ void unpack<__nv_bfloat16>(const uint4& raw, float (&x)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {  // a bf16 is the high half of the float it stands for
    x[2 * i] = __uint_as_float(words[i] << 16);
    x[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
  }
}
template <> __device__ __forceinline__ void unpack<__half>(const uint4& raw, float (&x)[8]) {
  const unsigned words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; i++) {
    x[2 * i] = __half2float(__ushort_as_half((unsigned short)(words[i] & 0xffffu)));
    x[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(words[i] >> 16)));
  }
}

// Elements [first, first + P) of row x as one 16-byte vector (elements at or past `vocab` read as 0 bits).
// A row off the 16-byte grid, and the row's last partial vector, take the same bits element by element.
template <typename T>
__device__ __forceinline__ uint4 load_vector(const T* x, long long first, long long vocab, bool aligned) {
  constexpr int P = kPerVector<T>;
  if (aligned && first + P <= vocab) return __ldcs(reinterpret_cast<const uint4*>(x + first));
  unsigned words[4] = {0, 0, 0, 0};
  if constexpr (sizeof(T) == 4) {
    const unsigned* bits = reinterpret_cast<const unsigned*>(x);
#pragma unroll
    for (int j = 0; j < P; j++)
      if (first + j < vocab) words[j] = bits[first + j];
  } else {
    const unsigned short* bits = reinterpret_cast<const unsigned short*>(x);
#pragma unroll
    for (int j = 0; j < P; j++)  // element 2i is the low half of word i, as in memory
      if (first + j < vocab) words[j / 2] |= (unsigned)bits[first + j] << (16 * (j % 2));
  }
  return make_uint4(words[0], words[1], words[2], words[3]);
}

// A vector's elements scaled by 1 / T.
template <typename T>
__device__ __forceinline__ void scaled(const uint4& raw, float inverse_temperature, float (&x)[kPerVector<T>]) {
  unpack<T>(raw, x);
#pragma unroll
  for (int j = 0; j < kPerVector<T>; j++) x[j] = __fmul_rn(x[j], inverse_temperature);
}

// One lane's vector: `count` scaled elements with consecutive ids from `first_id` (count 0: the lane has
// nothing here but still takes part in the warp's votes). `seeded` is the id the list already holds.
template <int N>
__device__ __forceinline__ void consume(const float (&x)[N], int count, int first_id, int seeded, float& m, float& s,
                                        WarpTopK& top) {
  float local = -INFINITY;
#pragma unroll
  for (int j = 0; j < N; j++)
    if (j < count) local = fmaxf(local, x[j]);
  if (local > m) {
    s = m == -INFINITY ? 0.0f : s * expf(m - local);
    m = local;
  }
  if (m != -INFINITY) {
#pragma unroll
    for (int j = 0; j < N; j++)
      if (j < count) s += __expf(x[j] - m);
  }
  // Candidates are rare once the list has filled: one vote on the vector's maximum rules most vectors out.
  if (__ballot_sync(kAll, count > 0 && !(local < top.bar.value)) == 0) return;
#pragma unroll
  for (int j = 0; j < N; j++) {
    const int id = first_id + j;
    top.append(j < count && id != seeded && top.admits(x[j], id), x[j], id);
  }
}

// Pass 1: block (row, slice) → the slice's max, Σ exp(x − max) and k best (value, id) at part = row · slices + slice.
// Warp w streams elements [slice · kSlice + w · kWarpSpan, + kWarpSpan); lane l reads their vectors l, l + 32, ….
template <typename T>
__global__ void __launch_bounds__(kSliceWarps * 32) topk_logprobs_slice_kernel(
    const T* __restrict__ logits, long long vocab, int slices, const float* __restrict__ temperature, int k,
    float* __restrict__ part_max, float* __restrict__ part_sum, float* __restrict__ part_value,
    int* __restrict__ part_id) {
  constexpr int P = kPerVector<T>;
  constexpr int kVectorsPerLane = kWarpSpan / (32 * P);
  static_assert(kVectorsPerLane % kBatch == 0, "batches tile a warp's span");
  __shared__ Entry queues[kSliceWarps][64];
  __shared__ Entry lists[kSliceWarps][32];
  __shared__ float warp_max[kSliceWarps];
  __shared__ float warp_sum[kSliceWarps];

  const long long part = blockIdx.x;
  const long long row = part / slices;
  const long long slice = part % slices;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const T* x = logits + row * vocab;
  const bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const float inverse_temperature = temperature == nullptr ? 1.0f : 1.0f / temperature[row];
  const long long begin = slice * kSlice + (long long)warp * kWarpSpan;

  float m = -INFINITY, s = 0.0f;
  WarpTopK top;
  top.init(queues[warp], k, lane);
  int seeded = kNoId;

  // Warp-uniform bound: batches past the end of the row are skipped (begin + batch start < vocab).
  for (int t = 0; t < kVectorsPerLane && begin + (long long)t * 32 * P < vocab; t += kBatch) {
    uint4 raw[kBatch];
    long long first[kBatch];
    int count[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; u++) {
      first[u] = begin + ((long long)(t + u) * 32 + lane) * P;
      count[u] = (int)max(0LL, min((long long)P, vocab - first[u]));
      raw[u] = load_vector(x, first[u], vocab, aligned);
    }
    if (t == 0) {
      // The list starts as the lanes' best elements of the first batch; the rest of it must beat their k-th.
      Entry best = sentinel();
#pragma unroll
      for (int u = 0; u < kBatch; u++) {
        float e[P];
        scaled<T>(raw[u], inverse_temperature, e);
#pragma unroll
        for (int j = 0; j < P; j++)
          if (j < count[u] && before(e[j], (int)first[u] + j, best.value, best.id)) best = {e[j], (int)first[u] + j};
      }
      seeded = best.id;
      top.seed(best);
    }
#pragma unroll
    for (int u = 0; u < kBatch; u++) {
      float e[P];
      scaled<T>(raw[u], inverse_temperature, e);
      consume(e, count[u], count[u] > 0 ? (int)first[u] : 0, seeded, m, s, top);
    }
  }
  if (top.queued > 0) top.flush();

  combine_warp(m, s);
  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = s;
  }
  __syncthreads();
  merge_warps<kSliceWarps>(top.mine, lists, warp, lane);
  if (warp != 0) return;

  if (lane < k) {
    part_value[part * k + lane] = top.mine.value;
    part_id[part * k + lane] = top.mine.id;
  }
  if (lane == 0) {
    m = warp_max[0];
    s = warp_sum[0];
    for (int w = 1; w < kSliceWarps; w++) combine(m, s, warp_max[w], warp_sum[w]);
    part_max[part] = m;
    part_sum[part] = s;
  }
}

// Pass 2: block `row` merges the row's slice partials and writes the outputs of mlnode_topk_logprobs.
template <typename T>
__global__ void __launch_bounds__(kMergeWarps * 32) topk_logprobs_merge_kernel(
    const T* __restrict__ logits, long long vocab, int slices, const float* __restrict__ temperature,
    const int64_t* __restrict__ chosen, int k, const float* __restrict__ part_max, const float* __restrict__ part_sum,
    const float* __restrict__ part_value, const int* __restrict__ part_id, float* __restrict__ values,
    int64_t* __restrict__ ids, float* __restrict__ chosen_logprob, int64_t* __restrict__ argmax) {
  __shared__ Entry lists[kMergeWarps][32];

  const long long row = blockIdx.x;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const long long first_part = row * slices;

  // Warp w takes in slices w, w + kMergeWarps, …; each stored list is sorted, and read mirrored.
  Entry top = sentinel();
  for (int slice = warp; slice < slices; slice += kMergeWarps) {
    const long long at = (first_part + slice) * k + (31 - lane);
    merge_mirrored(top, 31 - lane < k ? Entry{part_value[at], part_id[at]} : sentinel(), lane);
  }
  merge_warps<kMergeWarps>(top, lists, warp, lane);
  if (warp != 0) return;

  // Normaliser: lane l takes slices l, l + 32, … in order, then the butterfly.
  float m = -INFINITY, s = 0.0f;
  for (int slice = lane; slice < slices; slice += 32) combine(m, s, part_max[first_part + slice], part_sum[first_part + slice]);
  combine_warp(m, s);
  const float log_normaliser = m + logf(s);

  if (lane < k) {
    values[row * k + lane] = top.value - log_normaliser;
    ids[row * k + lane] = top.id;
  }
  if (lane == 0) {
    const T* x = logits + row * vocab;
    const float inverse_temperature = temperature == nullptr ? 1.0f : 1.0f / temperature[row];
    const long long c = chosen == nullptr ? -1 : chosen[row];
    argmax[row] = top.id;
    chosen_logprob[row] = c < 0 ? top.value - log_normaliser
                          : c < vocab ? __fmul_rn(mlnode::load_float(x, c), inverse_temperature) - log_normaliser
                                      : CUDART_NAN_F;
  }
}

long long slices_of(long long vocab) { return (vocab + kSlice - 1) / kSlice; }

// Scratch layout for rows · slices partials: max, sum (f32 each), then values (f32) and ids (i32), k per partial.
long long scratch_bytes(long long rows, long long vocab, int k) {
  return rows * slices_of(vocab) * (2LL + 2LL * k) * 4;
}

mlnode_status check_shape(int64_t rows, int64_t vocab, int32_t k) {
  if (vocab < 1 || vocab >= kNoId)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: vocab %lld is outside [1, 2^31 - 1)", (long long)vocab);
  if (rows < 0 || rows > INT32_MAX || rows * slices_of(vocab) > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: rows %lld times %lld slices per row is outside [0, 2^31)",
                        (long long)rows, slices_of(vocab));
  if (k < 1 || k > kMaxK || k > vocab)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: k %d is outside [1, min(%d, vocab %lld)]", k, kMaxK,
                        (long long)vocab);
  return MLNODE_OK;
}

}  // namespace

// Bytes of device scratch mlnode_topk_logprobs needs for these sizes (the caller allocates it).
MLNODE_API mlnode_status mlnode_topk_logprobs_scratch_bytes(int64_t rows, int64_t vocab, int32_t k, int64_t* bytes) {
  if (bytes == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs_scratch_bytes: bytes is null");
  if (mlnode_status status = check_shape(rows, vocab, k); status != MLNODE_OK) return status;
  *bytes = scratch_bytes(rows, vocab, k);
  return MLNODE_OK;
}

// logits: [rows, vocab] of `dtype` (f32, bf16 or f16), contiguous. temperature: [rows] f32 > 0, or null for
// all 1 (raw logprobs). chosen: [rows] token ids whose logprob to report, −1 for the argmax, or null for
// all −1; an id ≥ vocab gets NaN. Outputs: values [rows, k] f32 and ids [rows, k] i64 in rank order,
// chosen_logprob [rows] f32, argmax [rows] i64 (the lowest id of the maximum). 1 ≤ k ≤ min(32, vocab).
// scratch: scratch_bytes ≥ mlnode_topk_logprobs_scratch_bytes(rows, vocab, k) of device memory, 4-byte aligned,
// free for the kernels until they finish on `stream`.
MLNODE_API mlnode_status mlnode_topk_logprobs(const void* logits, int32_t dtype, int64_t rows, int64_t vocab,
                                              const float* temperature, const int64_t* chosen, int32_t k,
                                              float* values, int64_t* ids, float* chosen_logprob,
                                              int64_t* argmax, void* scratch, int64_t scratch_bytes_given,
                                              void* stream) {
  if (logits == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is null");
  if (mlnode_status status = check_shape(rows, vocab, k); status != MLNODE_OK) return status;
  if (values == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: values is null");
  if (ids == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: ids is null");
  if (chosen_logprob == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: chosen_logprob is null");
  if (argmax == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: argmax is null");
  const long long needed = scratch_bytes(rows, vocab, k);
  if (scratch_bytes_given < needed)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: scratch_bytes %lld is less than the %lld needed",
                        (long long)scratch_bytes_given, needed);
  if (needed > 0 && (scratch == nullptr || reinterpret_cast<uintptr_t>(scratch) % 4 != 0))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: scratch is null or not 4-byte aligned");
  return mlnode::dispatch_float((mlnode_dtype)dtype, "topk_logprobs: logits", [&](auto zero) -> mlnode_status {
    using T = decltype(zero);
    if (reinterpret_cast<uintptr_t>(logits) % sizeof(T) != 0)
      return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is not aligned to its element size");
    if (rows == 0) return MLNODE_OK;
    const long long slices = slices_of(vocab);
    const long long parts = rows * slices;
    float* part_max = static_cast<float*>(scratch);
    float* part_sum = part_max + parts;
    float* part_value = part_sum + parts;
    int* part_id = reinterpret_cast<int*>(part_value + parts * k);
    const T* x = static_cast<const T*>(logits);
    cudaStream_t s = (cudaStream_t)stream;
    topk_logprobs_slice_kernel<T><<<(unsigned)parts, kSliceWarps * 32, 0, s>>>(
        x, vocab, (int)slices, temperature, k, part_max, part_sum, part_value, part_id);
    if (mlnode_status status = mlnode::check_launch("topk_logprobs_slice_kernel"); status != MLNODE_OK) return status;
    topk_logprobs_merge_kernel<T><<<(unsigned)rows, kMergeWarps * 32, 0, s>>>(
        x, vocab, (int)slices, temperature, chosen, k, part_max, part_sum, part_value, part_id, values, ids,
        chosen_logprob, argmax);
    return mlnode::check_launch("topk_logprobs_merge_kernel");
  });
}
