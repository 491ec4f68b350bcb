// Top-k log-probabilities over the vocabulary, fused: the logits [B, V] are read once to produce, per row,
// the log-softmax normaliser, the k best tokens with their logprobs, the logprob of a chosen token and the
// argmax. Reference: MLNode.Engines.Llm.Sampling.BatchLogprobs.Reference (log_softmax, topk and gather on
// the same device).
//
// Two launches. The slice kernel cuts each row into S slices of 16-byte vectors and gives each (row, slice)
// a 512-thread block; S is picked from the batch and the GPU's resident block slots so the B·S blocks fill
// whole waves (one block per row would leave SMs idle below ~2 rows per SM). Each block streams its slice
// through a cp.async ring in shared memory — every thread keeps 7 vectors (112 KiB per SM) in flight while it
// works on the 8th, so the loads never wait on the arithmetic — and leaves its (max, Σ exp(x − max)) and its
// k best (value, id) in scratch. The merge kernel then takes, per row, the S pairs in slice order and the S
// sorted lists through a fixed merge tree. Nothing depends on timing: the same logits, batch and GPU give the
// same bits on every run (S, hence the summation order, follows the batch size and the GPU).
//
// Within a slice every thread keeps an online (max, sum) over the elements it reads; every warp keeps its k
// best (value, id) spread over its lanes (lane i holds the i-th best). Inserting into that list is a serial
// warp-collective step, so what costs is how many elements get admitted. Started empty, each warp would
// admit ~k·(1 + ln(n/k)) of its n elements. So the first two stages double as a sample: the k-th largest of
// 32 sample groups' maxima is a floor that k elements reach, nothing below it can be in the slice's top-k,
// and every list starts full of placeholders (floor, no id) that any element at or above the floor beats.
// A vector is then ruled out by one comparison per element and one vote per warp; the few candidates left
// go in one at a time. At the end the warps' lists are merged pairwise in a fixed tree: each merge places
// every entry of both sorted lists at once (its rank in the other list by binary search), not one by one.
//
// Order: descending value, ties by the lower token id — a strict total order, so the top-k is unique and
// depends neither on the floors nor on the slices.
// Values are log_softmax(x / T) computed as libtorch computes them on CUDA: x * (1 / T) (its division by
// a scalar multiplies by the reciprocal), then x - (max + log(sum)). The products go through __fmul_rn so
// the compiler cannot fuse them into a later subtraction and round differently from libtorch.
#include <math_constants.h>

#include <algorithm>
#include <cstdint>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 512;        // slice blocks: two per SM at ≤ 64 registers a thread
constexpr int kWarps = kThreads / 32;
constexpr int kMaxK = 32;            // one list entry per lane
constexpr int kMaxSlices = 32;       // the merge gives each slice's normaliser one lane
constexpr int kStages = 8;           // ring of 16-byte vectors per thread: kStages − 1 in flight
constexpr int kRingBytes = kStages * kThreads * 16;
constexpr int kSampleStages = 2;     // the stages whose vectors are also the floor's sample
constexpr int kGroups = 32;          // sample groups of kGroupThreads consecutive threads
constexpr int kGroupThreads = kThreads / kGroups;
constexpr long long kMinSliceVectors = 512;   // 8 KiB, a stage per thread: shorter slices would be all pipeline fill
constexpr unsigned kAll = 0xffffffffu;
constexpr int kNoId = INT32_MAX;     // placeholders (floor, kNoId) lose to every element at or above the floor
static_assert(kStages > kSampleStages, "the sample's stages are in the ring's first fill");
static_assert(kGroupThreads <= 32 && 32 % kGroupThreads == 0, "a sample group is part of one warp");

struct Entry {
  float value;
  int id;
};

// a ranks before b: larger value, or the same value and the lower id.
__device__ __forceinline__ bool before(float av, int aid, float bv, int bid) {
  return av > bv || (av == bv && aid < bid);
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

// A warp's k best entries, lane i holding the i-th; `last` is entry k−1 broadcast to all lanes. It starts
// as k placeholders (floor, kNoId), so it only ever admits elements at or above the floor.
struct WarpTopK {
  Entry mine;
  Entry last;
  int k;
  int lane;

  __device__ void init(int k_, int lane_, float floor) {
    k = k_;
    lane = lane_;
    mine = {floor, kNoId};
    last = mine;
  }

  __device__ __forceinline__ bool admits(float v, int id) const { return before(v, id, last.value, last.id); }

  // Warp-collective: every lane passes the same candidate.
  __device__ void insert(float v, int id) {
    if (!admits(v, id)) return;
    int position = __popc(__ballot_sync(kAll, lane < k && before(mine.value, mine.id, v, id)));
    float up_value = __shfl_up_sync(kAll, mine.value, 1);
    int up_id = __shfl_up_sync(kAll, mine.id, 1);
    if (lane == position) mine = {v, id};
    else if (lane > position) mine = {up_value, up_id};
    last = {__shfl_sync(kAll, mine.value, k - 1), __shfl_sync(kAll, mine.id, k - 1)};
  }
};

// One thread's share of a step: `count` scaled elements with consecutive ids from `first_id` (count 0: the
// thread has nothing this step but still takes part in the warp's votes).
template <int N>
__device__ __forceinline__ void consume(const float (&x)[N], int count, int first_id, float& m, float& s, WarpTopK& top) {
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
  // Candidates: elements not below the list's last value (NaNs never are). Most steps have none in the
  // whole warp; the others go in one at a time, lowest lane and element first. `insert` checks each against
  // the list as it is by then.
  unsigned pending = 0;
#pragma unroll
  for (int j = 0; j < N; j++)
    if (j < count && x[j] >= top.last.value) pending |= 1u << j;
  for (unsigned lanes = __ballot_sync(kAll, pending != 0); lanes != 0; lanes = __ballot_sync(kAll, pending != 0)) {
    const int source = __ffs(lanes) - 1;
    const int bit = __ffs(pending) - 1;
    float v = x[0];
#pragma unroll
    for (int j = 1; j < N; j++)
      if (bit == j) v = x[j];
    const float value = __shfl_sync(kAll, v, source);
    const int id = __shfl_sync(kAll, first_id + bit, source);
    if (top.lane == source) pending &= pending - 1;
    top.insert(value, id);
  }
}

// Warp-collective: the k best of two sorted lists of k entries, a and b, into a. Every entry's place in the
// result is its index plus the number of entries of the other list before it (a first among equal entries,
// which only placeholders can be), found by binary search: a merge path, all lanes at once.
__device__ void merge_lists(float* a_value, int* a_id, const float* b_value, const int* b_id, int k, int lane) {
  float av = 0.0f, bv = 0.0f;
  int ai = 0, bi = 0, a_place = k, b_place = k;
  if (lane < k) {
    av = a_value[lane];
    ai = a_id[lane];
    bv = b_value[lane];
    bi = b_id[lane];
    int lo = 0, hi = k;  // b's entries before a[lane] are a prefix of b
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (before(b_value[mid], b_id[mid], av, ai)) lo = mid + 1;
      else hi = mid;
    }
    a_place = lane + lo;
    lo = 0;
    hi = k;  // a's entries at or before b[lane] are a prefix of a
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (!before(bv, bi, a_value[mid], a_id[mid])) lo = mid + 1;
      else hi = mid;
    }
    b_place = lane + lo;
  }
  __syncwarp();
  if (a_place < k) {
    a_value[a_place] = av;
    a_id[a_place] = ai;
  }
  if (b_place < k) {
    a_value[b_place] = bv;
    a_id[b_place] = bi;
  }
  __syncwarp();
}


// Block-collective: a floor for the slice's top-k from the sample stages, the same in every thread. Each
// group of kGroupThreads threads takes the maximum of its sample; the k-th largest of the 32 maxima is
// reached by k distinct elements, so an element below it has k elements before it and is not in the top-k.
// −∞ (no floor: the plain algorithm) when fewer than k groups sampled anything; NaNs never count (fmaxf
// drops them), as they never enter a list.
template <typename T>
__device__ float sample_floor(const uint4* ring, long long count, float inverse_temperature, int k, int tid,
                              float (&group_max)[kGroups]) {
  constexpr int P = mlnode::kPerVector<T>;
  float best = -INFINITY;
#pragma unroll
  for (int u = 0; u < kSampleStages; u++) {
    if ((long long)u * kThreads + tid >= count) continue;
    float e[P];
    mlnode::unpack<T>(ring[u * kThreads + tid], e);
#pragma unroll
    for (int j = 0; j < P; j++) best = fmaxf(best, __fmul_rn(e[j], inverse_temperature));
  }
#pragma unroll
  for (int offset = kGroupThreads / 2; offset > 0; offset /= 2) best = fmaxf(best, __shfl_xor_sync(kAll, best, offset));
  if (tid % kGroupThreads == 0) group_max[tid / kGroupThreads] = best;
  __syncthreads();

  const float mine = group_max[tid % 32];
  int reaching = 0;
#pragma unroll
  for (int g = 0; g < kGroups; g++) reaching += group_max[g] >= mine ? 1 : 0;
  float floor = reaching >= k ? mine : -INFINITY;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) floor = fmaxf(floor, __shfl_xor_sync(kAll, floor, offset));
  return floor;
}

// Where the slice blocks leave their results for the merge: per record r = row · slices + slice, the slice's
// (max, sum) and its k best (scaled value, id) in rank order. Struct of arrays, so its size follows k.
struct Partials {
  float* max;
  float* sum;
  float* value;
  int* id;

  __host__ __device__ static long long bytes(long long records, int k) { return records * (2 + 2 * (long long)k) * 4; }

  __host__ __device__ Partials(void* scratch, long long records, int k) {
    max = static_cast<float*>(scratch);
    sum = max + records;
    value = sum + records;
    id = reinterpret_cast<int*>(value + records * k);
  }
};

// A row splits into an unaligned head, 16-byte vectors, and a tail shorter than a vector; the slices share
// out the vectors, and slice 0 also takes the head and the tail.
template <typename T>
struct RowLayout {
  long long head;
  long long vectors;
  long long tail_start;
  int remainder;  // head + tail elements: ≤ 2(P − 1) < kThreads

  __device__ RowLayout(const T* x, long long vocab) {
    head = min((long long)((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T)), vocab);
    vectors = (vocab - head) / mlnode::kPerVector<T>;
    tail_start = head + vectors * mlnode::kPerVector<T>;
    remainder = (int)(head + vocab - tail_start);
  }
};

template <typename T>
__global__ void __launch_bounds__(kThreads, 2) topk_logprobs_slice_kernel(
    const T* __restrict__ logits, long long vocab, const float* __restrict__ temperature, int k, int slices,
    Partials partials) {
  constexpr int P = mlnode::kPerVector<T>;
  extern __shared__ uint4 ring[];  // [kStages][kThreads]
  __shared__ float list_value[kWarps][kMaxK];
  __shared__ int list_id[kWarps][kMaxK];
  __shared__ float warp_max[kWarps];
  __shared__ float warp_sum[kWarps];
  __shared__ float group_max[kGroups];

  const long long record = blockIdx.x;
  const long long row = record / slices;
  const int slice = (int)(record % slices);
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const T* x = logits + row * vocab;
  const float inverse_temperature = temperature == nullptr ? 1.0f : 1.0f / temperature[row];
  const RowLayout<T> layout(x, vocab);
  const uint4* body = reinterpret_cast<const uint4*>(x + layout.head);
  const long long per_slice = (layout.vectors + slices - 1) / slices;
  const long long begin = min(slice * per_slice, layout.vectors);
  const long long count = min(begin + per_slice, layout.vectors) - begin;  // this slice's vectors (may be 0)
  const uint4* mine = body + begin;

  // Stage t is vector t·kThreads + tid of the slice, in ring slot t mod kStages; one commit group per stage
  // (empty past the end), so "stage t has landed" is "at most (groups committed − t − 1) still in flight".
  auto issue = [&](long long stage) {
    const long long v = stage * kThreads + tid;
    if (v < count) mlnode::cp_async16(&ring[(int)(stage % kStages) * kThreads + tid], mine + v);
    mlnode::cp_async_commit();
  };
#pragma unroll
  for (int stage = 0; stage < kStages - 1; stage++) issue(stage);
  mlnode::cp_async_wait<kStages - 1 - kSampleStages>();

  float m = -INFINITY, s = 0.0f;
  WarpTopK top;
  top.init(k, lane, sample_floor<T>(ring, count, inverse_temperature, k, tid, group_max));

  if (slice == 0) {
    float one[1] = {-INFINITY};
    const int id = tid < layout.head ? tid : (int)(layout.tail_start + tid - layout.head);
    if (tid < layout.remainder) one[0] = __fmul_rn(mlnode::load_float(x, id), inverse_temperature);
    consume(one, tid < layout.remainder ? 1 : 0, id, m, s, top);
  }

  const long long stages = (count + kThreads - 1) / kThreads;
  for (long long stage = 0; stage < stages; stage++) {
    mlnode::cp_async_wait<kStages - 2>();
    const long long v = stage * kThreads + tid;
    const uint4 raw = v < count ? ring[(int)(stage % kStages) * kThreads + tid] : make_uint4(0, 0, 0, 0);
    // Refills the slot read one step ago: this thread's own copy, already consumed.
    issue(stage + kStages - 1);
    float e[P];
    mlnode::unpack<T>(raw, e);
#pragma unroll
    for (int j = 0; j < P; j++) e[j] = __fmul_rn(e[j], inverse_temperature);
    consume(e, v < count ? P : 0, (int)(layout.head + (begin + v) * P), m, s, top);
  }
  mlnode::cp_async_wait<0>();

  // Normaliser: butterfly within each warp, then warp 0 over the warps, both in a fixed order.
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    combine(m, s, __shfl_xor_sync(kAll, m, offset), __shfl_xor_sync(kAll, s, offset));
  if (lane == 0) {
    warp_max[warp] = m;
    warp_sum[warp] = s;
  }
  if (lane < k) {
    list_value[warp][lane] = top.mine.value;
    list_id[warp][lane] = top.mine.id;
  }
  __syncthreads();

  for (int stride = 1; stride < kWarps; stride *= 2) {
    if (warp % (2 * stride) == 0)
      merge_lists(list_value[warp], list_id[warp], list_value[warp + stride], list_id[warp + stride], k, lane);
    __syncthreads();
  }

  if (warp != 0) return;
  m = lane < kWarps ? warp_max[lane] : -INFINITY;
  s = lane < kWarps ? warp_sum[lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    combine(m, s, __shfl_xor_sync(kAll, m, offset), __shfl_xor_sync(kAll, s, offset));
  if (lane < k) {
    partials.value[record * k + lane] = list_value[0][lane];
    partials.id[record * k + lane] = list_id[0][lane];
  }
  if (lane == 0) {
    partials.max[record] = m;
    partials.sum[record] = s;
  }
}

// One block per row, a warp per pair of slices: the slices' sorted lists merged in a fixed tree (the row's
// top-k is the top-k of the slices' top-k lists: the order is strict) and their (max, sum) pairs in a fixed
// butterfly, so the result does not depend on which slice block finished first.
template <typename T>
__global__ void __launch_bounds__(kMaxSlices / 2 * 32) topk_logprobs_merge_kernel(
    const T* __restrict__ logits, long long vocab, const float* __restrict__ temperature,
    const int64_t* __restrict__ chosen, int k, int slices, Partials partials, float* __restrict__ values,
    int64_t* __restrict__ ids, float* __restrict__ chosen_logprob, int64_t* __restrict__ argmax) {
  __shared__ float list_value[kMaxSlices][kMaxK];
  __shared__ int list_id[kMaxSlices][kMaxK];

  const long long row = blockIdx.x;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const long long first = row * slices;  // the row's first record
  for (int i = threadIdx.x; i < slices * k; i += blockDim.x) {
    list_value[i / k][i % k] = partials.value[first * k + i];
    list_id[i / k][i % k] = partials.id[first * k + i];
  }
  __syncthreads();
  for (int stride = 1; stride < slices; stride *= 2) {
    const int a = warp * 2 * stride;
    if (a + stride < slices) merge_lists(list_value[a], list_id[a], list_value[a + stride], list_id[a + stride], k, lane);
    __syncthreads();
  }

  if (warp != 0) return;
  float m = lane < slices ? partials.max[first + lane] : -INFINITY;
  float s = lane < slices ? partials.sum[first + lane] : 0.0f;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    combine(m, s, __shfl_xor_sync(kAll, m, offset), __shfl_xor_sync(kAll, s, offset));
  const float log_normaliser = m + logf(s);

  if (lane < k) {
    values[row * k + lane] = list_value[0][lane] - log_normaliser;
    ids[row * k + lane] = list_id[0][lane];
  }
  if (lane == 0) {
    argmax[row] = list_id[0][0];
    const T* x = logits + row * vocab;
    const float inverse_temperature = temperature == nullptr ? 1.0f : 1.0f / temperature[row];
    const long long c = chosen == nullptr ? -1 : chosen[row];
    chosen_logprob[row] = c < 0 ? list_value[0][0] - log_normaliser
                          : c < vocab ? __fmul_rn(mlnode::load_float(x, c), inverse_temperature) - log_normaliser
                                      : CUDART_NAN_F;
  }
}

// Slices per row: the first count whose B·S blocks fill ≥ 90% of the waves they take (else the best fill),
// with slices of at least kMinSliceVectors and at most kMaxSlices of them.
int slices_for(long long rows, long long vectors, int slots) {
  const long long cap = std::min<long long>({kMaxSlices, std::max(1LL, vectors / kMinSliceVectors), INT32_MAX / rows});
  int best = 1;
  double best_fill = 0.0;
  for (int s = 1; s <= cap; s++) {
    const long long blocks = rows * s;
    const double fill = (double)blocks / (double)(((blocks + slots - 1) / slots) * slots);
    if (fill >= 0.9) return s;
    if (fill > best_fill) {
      best = s;
      best_fill = fill;
    }
  }
  return best;
}

// Scratch for rows × kMaxSlices records, whatever slice count the GPU gets.
long long scratch_bytes_for(long long rows, int k) { return Partials::bytes(rows * kMaxSlices, k); }

mlnode_status check_shape(const char* entry, int64_t rows, int64_t vocab, int32_t k) {
  if (rows < 0 || rows > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: rows %lld is outside [0, 2^31)", entry, (long long)rows);
  if (vocab < 1 || vocab >= kNoId)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: vocab %lld is outside [1, 2^31 - 1)", entry, (long long)vocab);
  if (k < 1 || k > kMaxK || k > vocab)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "%s: k %d is outside [1, min(%d, vocab %lld)]", entry, k, kMaxK,
                        (long long)vocab);
  return MLNODE_OK;
}

}  // namespace

// The bytes of device memory mlnode_topk_logprobs needs as `scratch` for `rows` rows and this k.
MLNODE_API mlnode_status mlnode_topk_logprobs_scratch_bytes(int64_t rows, int32_t k, int64_t* bytes) {
  if (rows < 0 || rows > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs_scratch_bytes: rows %lld is outside [0, 2^31)", (long long)rows);
  if (k < 1 || k > kMaxK)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs_scratch_bytes: k %d is outside [1, %d]", k, kMaxK);
  if (bytes == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs_scratch_bytes: bytes is null");
  *bytes = scratch_bytes_for(rows, k);
  return MLNODE_OK;
}

// logits: [rows, vocab] of `dtype` (f32, bf16 or f16), contiguous. temperature: [rows] f32 > 0, or null for
// all 1 (raw logprobs). chosen: [rows] token ids whose logprob to report, −1 for the argmax, or null for
// all −1; an id ≥ vocab gets NaN. Outputs: values [rows, k] f32 and ids [rows, k] i64 in rank order,
// chosen_logprob [rows] f32, argmax [rows] i64 (the lowest id of the maximum). 1 ≤ k ≤ min(32, vocab).
// scratch: device memory, 4-byte aligned, of at least mlnode_topk_logprobs_scratch_bytes(rows, k) bytes, used
// by the call's work on `stream` only (the caller may reuse it for work queued after).
MLNODE_API mlnode_status mlnode_topk_logprobs(const void* logits, int32_t dtype, int64_t rows, int64_t vocab,
                                              const float* temperature, const int64_t* chosen, int32_t k,
                                              float* values, int64_t* ids, float* chosen_logprob,
                                              int64_t* argmax, void* scratch, int64_t scratch_bytes, void* stream) {
  if (logits == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is null");
  if (mlnode_status status = check_shape("topk_logprobs", rows, vocab, k); status != MLNODE_OK) return status;
  if (values == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: values is null");
  if (ids == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: ids is null");
  if (chosen_logprob == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: chosen_logprob is null");
  if (argmax == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: argmax is null");
  if (rows > 0 && (scratch == nullptr || reinterpret_cast<uintptr_t>(scratch) % 4 != 0))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: scratch is null or not 4-byte aligned");
  if (scratch_bytes < scratch_bytes_for(rows, k))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: scratch_bytes %lld is below the %lld needed",
                        (long long)scratch_bytes, scratch_bytes_for(rows, k));
  return mlnode::dispatch_float((mlnode_dtype)dtype, "topk_logprobs: logits", [&](auto zero) -> mlnode_status {
    using T = decltype(zero);
    if (reinterpret_cast<uintptr_t>(logits) % sizeof(T) != 0)
      return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is not aligned to its element size");
    if (rows == 0) return MLNODE_OK;
    int slots = 0;
    if (mlnode_status status = mlnode::resident_blocks<topk_logprobs_slice_kernel<T>>("topk_logprobs", kThreads, kRingBytes, slots);
        status != MLNODE_OK)
      return status;
    // Whatever its alignment, a row has at least vocab / P − 2 vectors: what the slices' minimum length is checked on.
    const long long vectors = std::max(0LL, (long long)vocab / mlnode::kPerVector<T> - 2);
    const int slices = slices_for(rows, vectors, slots);
    const Partials partials(scratch, rows * slices, k);
    const T* typed = static_cast<const T*>(logits);
    const auto cuda_stream = static_cast<cudaStream_t>(stream);
    topk_logprobs_slice_kernel<T><<<(unsigned)(rows * slices), kThreads, kRingBytes, cuda_stream>>>(
        typed, vocab, temperature, k, slices, partials);
    if (mlnode_status status = mlnode::check_launch("topk_logprobs_slice_kernel"); status != MLNODE_OK) return status;
    topk_logprobs_merge_kernel<T><<<(unsigned)rows, 32 * std::max(1, (slices + 1) / 2), 0, cuda_stream>>>(
        typed, vocab, temperature, chosen, k, slices, partials, values, ids, chosen_logprob, argmax);
    return mlnode::check_launch("topk_logprobs_merge_kernel");
  });
}
