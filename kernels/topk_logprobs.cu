// Top-k log-probabilities over the vocabulary, fused: per row of logits [B, V] one block reads the row
// once and produces the log-softmax normaliser, the k best tokens with their logprobs, the logprob of a
// chosen token and the argmax. Reference: MLNode.Engines.Llm.Sampling.BatchLogprobs.Reference
// (log_softmax, topk and gather on the same device).
//
// Single pass. Every thread keeps an online (max, sum of exp(x - max)) over the elements it reads; every
// warp keeps its k best (value, id) pairs spread over its lanes (lane i holds the i-th best). Inserting
// into that list is a serial warp-collective step (a vote and a few shuffles), so what costs is how many
// elements get admitted. Started empty, each warp would admit ~k·(1 + ln(n/k)) of its n elements (~130 of
// 4.7k at V = 152k), and the time would go to inserts, not to reading. So the first load round doubles as
// a sample: the k-th largest of the 32 warps' sample maxima is a floor that k elements reach, nothing
// below it can be in the top-k, and every list starts full of placeholders (floor, no id) that any element
// at or above the floor beats. The row's top-k then comes from a few hundred elements above the floor, a
// handful per warp, and one vote per vector rules out all the others. At the end the warps' lists are
// merged in a fixed tree and the (max, sum) pairs reduced in a fixed order, so the same logits give the
// same bits on every run.
//
// Order: descending value, ties by the lower token id — a strict total order, so the top-k is unique and
// does not depend on the floor.
// Values are log_softmax(x / T) computed as libtorch computes them on CUDA: x * (1 / T) (its division by
// a scalar multiplies by the reciprocal), then x - (max + log(sum)). The products go through __fmul_rn so
// the compiler cannot fuse them into a later subtraction and round differently from libtorch.
#include <math_constants.h>

#include <cstdint>

#include "mlnode_cuda.cuh"

namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kMaxK = 32;           // one list entry per lane
constexpr int kVectorsInFlight = 4; // 16-byte loads issued per thread before any is used: 64 KiB per SM in flight
constexpr unsigned kAll = 0xffffffffu;
constexpr int kNoId = INT32_MAX;    // placeholders (floor, kNoId) lose to every element at or above the floor
static_assert(kWarps == 32, "the normaliser's last reduction gives each lane of warp 0 one warp");

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

  // Warp-collective: each lane offers its own candidate; the admitted ones go in lane order.
  __device__ void offer(float v, int id) {
    unsigned pending = __ballot_sync(kAll, admits(v, id));
    while (pending != 0) {
      int source = __ffs(pending) - 1;
      pending &= pending - 1;
      insert(__shfl_sync(kAll, v, source), __shfl_sync(kAll, id, source));
    }
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
  // Candidates are rare once the list has filled: one vote on the vector's maximum rules most steps out.
  if (__ballot_sync(kAll, count > 0 && !(local < top.last.value)) == 0) return;
#pragma unroll
  for (int j = 0; j < N; j++) top.offer(j < count ? x[j] : -INFINITY, j < count ? first_id + j : kNoId);
}

// Loads this thread's vectors of the round that starts at vector `base` (zeros past the end: never consumed).
__device__ __forceinline__ void load_round(const uint4* body, long long vectors, long long base, int tid,
                                           uint4 (&raw)[kVectorsInFlight]) {
#pragma unroll
  for (int u = 0; u < kVectorsInFlight; u++) {
    long long v = base + (long long)u * kThreads + tid;
    raw[u] = v < vectors ? __ldcs(body + v) : make_uint4(0, 0, 0, 0);
  }
}

// Block-collective: a floor for the row's top-k from the first round's vectors, the same in every thread.
// Each warp takes the maximum of its sample; the k-th largest of those 32 maxima is reached by k distinct
// elements (k warps' maxima), so an element below it has k elements before it and is not in the top-k.
// −∞ (no floor: the plain algorithm) when fewer than k warps sampled anything; NaNs never count (fmaxf
// drops them), as they never enter a list.
template <typename T>
__device__ float sample_floor(const uint4 (&raw)[kVectorsInFlight], long long vectors, float inverse_temperature,
                              int k, int tid, float (&warp_sample_max)[kWarps]) {
  constexpr int P = mlnode::kPerVector<T>;
  float best = -INFINITY;
#pragma unroll
  for (int u = 0; u < kVectorsInFlight; u++) {
    if ((long long)u * kThreads + tid >= vectors) continue;
    float e[P];
    mlnode::unpack<T>(raw[u], e);
#pragma unroll
    for (int j = 0; j < P; j++) best = fmaxf(best, __fmul_rn(e[j], inverse_temperature));
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) best = fmaxf(best, __shfl_xor_sync(kAll, best, offset));
  if (tid % 32 == 0) warp_sample_max[tid / 32] = best;
  __syncthreads();

  const float mine = warp_sample_max[tid % 32];
  int reaching = 0;
#pragma unroll
  for (int w = 0; w < kWarps; w++) reaching += warp_sample_max[w] >= mine ? 1 : 0;
  float floor = reaching >= k ? mine : -INFINITY;
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) floor = fmaxf(floor, __shfl_xor_sync(kAll, floor, offset));
  return floor;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) topk_logprobs_kernel(
    const T* __restrict__ logits, long long vocab, const float* __restrict__ temperature,
    const int64_t* __restrict__ chosen, int k, float* __restrict__ values, int64_t* __restrict__ ids,
    float* __restrict__ chosen_logprob, int64_t* __restrict__ argmax) {
  constexpr int P = mlnode::kPerVector<T>;
  __shared__ float list_value[kWarps][kMaxK];
  __shared__ int list_id[kWarps][kMaxK];
  __shared__ float warp_max[kWarps];
  __shared__ float warp_sum[kWarps];
  __shared__ float warp_sample_max[kWarps];

  const int row = blockIdx.x;
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int lane = tid % 32;
  const T* x = logits + (long long)row * vocab;
  const float inverse_temperature = temperature == nullptr ? 1.0f : 1.0f / temperature[row];

  // The row splits into an unaligned head, 16-byte vectors, and a tail shorter than a vector.
  const long long head = min((long long)((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T)), vocab);
  const long long vectors = (vocab - head) / P;
  const long long tail_start = head + vectors * P;
  const int remainder = (int)(head + vocab - tail_start);  // ≤ 2(P − 1) < kThreads
  const uint4* body = reinterpret_cast<const uint4*>(x + head);

  // The first round's vectors are also the sample the lists' floor comes from.
  uint4 raw[kVectorsInFlight];
  load_round(body, vectors, 0, tid, raw);
  float m = -INFINITY, s = 0.0f;
  WarpTopK top;
  top.init(k, lane, sample_floor<T>(raw, vectors, inverse_temperature, k, tid, warp_sample_max));

  {
    float one[1] = {-INFINITY};
    int id = tid < head ? tid : (int)(tail_start + tid - head);
    if (tid < remainder) one[0] = __fmul_rn(mlnode::load_float(x, id), inverse_temperature);
    consume(one, tid < remainder ? 1 : 0, id, m, s, top);
  }

  for (long long base = 0; base < vectors; base += (long long)kVectorsInFlight * kThreads) {
    if (base > 0) load_round(body, vectors, base, tid, raw);
#pragma unroll
    for (int u = 0; u < kVectorsInFlight; u++) {
      long long v = base + (long long)u * kThreads + tid;
      float e[P];
      mlnode::unpack<T>(raw[u], e);
#pragma unroll
      for (int j = 0; j < P; j++) e[j] = __fmul_rn(e[j], inverse_temperature);
      consume(e, v < vectors ? P : 0, (int)(head + v * P), m, s, top);
    }
  }

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

  // Top-k: warp w takes in the list of warp w + stride; lists are sorted, so the first entry that fails
  // ends the merge.
  for (int stride = 1; stride < kWarps; stride *= 2) {
    if (warp % (2 * stride) == 0) {
      const int other = warp + stride;
      for (int j = 0; j < k; j++) {
        float v = list_value[other][j];
        int id = list_id[other][j];
        if (!top.admits(v, id)) break;
        top.insert(v, id);
      }
      if (lane < k) {
        list_value[warp][lane] = top.mine.value;
        list_id[warp][lane] = top.mine.id;
      }
    }
    __syncthreads();
  }

  if (warp != 0) return;
  m = warp_max[lane];
  s = warp_sum[lane];
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2)
    combine(m, s, __shfl_xor_sync(kAll, m, offset), __shfl_xor_sync(kAll, s, offset));
  const float log_normaliser = m + logf(s);

  if (lane < k) {
    values[(long long)row * k + lane] = top.mine.value - log_normaliser;
    ids[(long long)row * k + lane] = top.mine.id;
  }
  if (lane == 0) {
    argmax[row] = top.mine.id;
    const long long c = chosen == nullptr ? -1 : chosen[row];
    chosen_logprob[row] = c < 0 ? top.mine.value - log_normaliser
                          : c < vocab ? __fmul_rn(mlnode::load_float(x, c), inverse_temperature) - log_normaliser
                                      : CUDART_NAN_F;
  }
}

}  // namespace

// logits: [rows, vocab] of `dtype` (f32, bf16 or f16), contiguous. temperature: [rows] f32 > 0, or null for
// all 1 (raw logprobs). chosen: [rows] token ids whose logprob to report, −1 for the argmax, or null for
// all −1; an id ≥ vocab gets NaN. Outputs: values [rows, k] f32 and ids [rows, k] i64 in rank order,
// chosen_logprob [rows] f32, argmax [rows] i64 (the lowest id of the maximum). 1 ≤ k ≤ min(32, vocab).
MLNODE_API mlnode_status mlnode_topk_logprobs(const void* logits, int32_t dtype, int64_t rows, int64_t vocab,
                                              const float* temperature, const int64_t* chosen, int32_t k,
                                              float* values, int64_t* ids, float* chosen_logprob,
                                              int64_t* argmax, void* stream) {
  if (logits == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is null");
  if (rows < 0 || rows > INT32_MAX)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: rows %lld is outside [0, 2^31)", (long long)rows);
  if (vocab < 1 || vocab >= kNoId)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: vocab %lld is outside [1, 2^31 - 1)", (long long)vocab);
  if (k < 1 || k > kMaxK || k > vocab)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: k %d is outside [1, min(%d, vocab %lld)]", k, kMaxK,
                        (long long)vocab);
  if (values == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: values is null");
  if (ids == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: ids is null");
  if (chosen_logprob == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: chosen_logprob is null");
  if (argmax == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: argmax is null");
  return mlnode::dispatch_float((mlnode_dtype)dtype, "topk_logprobs: logits", [&](auto zero) -> mlnode_status {
    using T = decltype(zero);
    if (reinterpret_cast<uintptr_t>(logits) % sizeof(T) != 0)
      return mlnode::fail(MLNODE_INVALID_ARGUMENT, "topk_logprobs: logits is not aligned to its element size");
    if (rows == 0) return MLNODE_OK;
    topk_logprobs_kernel<T><<<(unsigned)rows, kThreads, 0, (cudaStream_t)stream>>>(
        static_cast<const T*>(logits), vocab, temperature, chosen, k, values, ids, chosen_logprob, argmax);
    return mlnode::check_launch("topk_logprobs_kernel");
  });
}
