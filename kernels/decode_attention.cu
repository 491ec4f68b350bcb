// One decode step's attention for a batch of sequences with one new token each, straight on the KV cache
// [slots, kv_heads, capacity, D]: no per-layer gather of each sequence's keys, no mask, no per-head copies.
//
// decode_qkv: the packed q/k/v projection row of each sequence → per-head RMSNorm (Qwen3), NeoX RoPE, the key and
//   value written at (slot, position), the query out. One warp per (sequence, head); the norm sums in the order of
//   rms_norm.cu's warp kernel and the rotation rounds like rotary.cu, so the values equal the eager path's bit for bit.
// decode_attention: softmax(q·Kᵀ/√D)·V over positions 0..position of each sequence, the query heads that share a
//   key/value head in one block (grouped-query attention reads each key once). Positions are split into chunks of
//   kChunk; every chunk's partial (max, sum, weighted values) goes to a workspace and a second kernel combines them
//   in chunk order. The chunk size is fixed, so a sequence's result does not depend on the batch or span it ran in.
#include "mlnode_cuda.cuh"

namespace {

constexpr int kWarp = 32;
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarp;
constexpr int kChunk = kThreads / 2;  // positions per block: two threads each
constexpr int kQkvWarps = 8;

// kPerLane: elements of a head per lane (a head of up to 32·kPerLane elements).
template <typename T, int kPerLane>
__global__ void decode_qkv(const T* qkv, const T* q_norm, const T* k_norm, float eps, const T* cos, const T* sin, T* k_cache,
                           T* v_cache, const int64_t* slots, const int64_t* positions, T* q_out, int batch, int heads,
                           int kv_heads, int dim, long long capacity) {
  extern __shared__ float rows[];
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int per_token = heads + 2 * kv_heads;
  const long long item = (long long)blockIdx.x * kQkvWarps + warp;
  if (item >= (long long)batch * per_token) return;
  const int b = (int)(item / per_token), j = (int)(item % per_token);
  const T* x = qkv + item * dim;
  const long long slot = slots[b], position = positions[b];
  if (j >= heads + kv_heads) {
    T* v = v_cache + ((slot * kv_heads + (j - heads - kv_heads)) * capacity + position) * dim;
    for (int i = lane; i < dim; i += kWarp) v[i] = x[i];
    return;
  }
  float* row = rows + warp * dim;
  const T* w = j < heads ? q_norm : k_norm;
  const T* c = cos + (long long)b * dim;
  const T* s = sin + (long long)b * dim;
  // Every operand this lane needs — its elements i = lane + 32·k of the head, the norm's weights, the rotation's cos and
  // sin — loaded up front: one memory round trip instead of one per stage (same arithmetic, same order).
  float xs[kPerLane], ws[kPerLane], cs[kPerLane], ss[kPerLane];
#pragma unroll
  for (int k = 0; k < kPerLane; k++) {
    const int i = lane + k * kWarp;
    if (i < dim) {
      xs[k] = mlnode::load_float(x, i);
      ws[k] = w != nullptr ? mlnode::load_float(w, i) : 0.f;
      cs[k] = mlnode::load_float(c, i);
      ss[k] = mlnode::load_float(s, i);
    }
  }
  if (w != nullptr) {
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < kPerLane; k++)
      if (lane + k * kWarp < dim) sum = fmaf(xs[k], xs[k], sum);
    const float inv_rms = rsqrtf(mlnode::warp_sum(sum) / dim + eps);
#pragma unroll
    for (int k = 0; k < kPerLane; k++) {
      const int i = lane + k * kWarp;
      if (i >= dim) continue;
      const T normed = mlnode::from_float<T>(xs[k] * inv_rms);
      const T scaled = mlnode::from_float<T>(ws[k] * mlnode::load_float(&normed, 0));
      row[i] = xs[k] = mlnode::load_float(&scaled, 0);
    }
  } else {
#pragma unroll
    for (int k = 0; k < kPerLane; k++)
      if (lane + k * kWarp < dim) row[lane + k * kWarp] = xs[k];
  }
  __syncwarp();
  T* out = j < heads ? q_out + ((long long)b * heads + j) * dim : k_cache + ((slot * kv_heads + (j - heads)) * capacity + position) * dim;
  const int half = dim / 2;
#pragma unroll
  for (int k = 0; k < kPerLane; k++) {
    const int i = lane + k * kWarp;
    if (i >= dim) continue;
    const float partner = row[i < half ? i + half : i - half];
    const T x_cos = mlnode::from_float<T>(__fmul_rn(xs[k], cs[k]));
    const T rot_sin = mlnode::from_float<T>(__fmul_rn(i < half ? -partner : partner, ss[k]));
    out[i] = mlnode::from_float<T>(__fadd_rn(mlnode::load_float(&x_cos, 0), mlnode::load_float(&rot_sin, 0)));
  }
}

// One block per (chunk, kv head, sequence), two threads per position of the chunk. The chunk's keys are copied to
// shared memory at once (cp.async: one memory round trip for the whole chunk), then its values into the same buffer
// while the softmax is reduced. Short chunks in one buffer keep a block's shared memory at ~22 KB, so ten blocks share
// an SM: at short spans a block is bound by its own compute and barriers, and more of them hide each other's latency
// (against 128-position chunks: 14% faster at 64 sequences × span 136, 8% slower at span 4096, where the chunks'
// partials are twice the traffic). Threads 2p and 2p + 1 score position p over alternate 16-byte vectors of the key
// for every query head of the group (kGroup ≥ heads per kv head) and add their halves (the same bits on both); the
// block takes each head's softmax over the chunk (reductions in warp order), and thread i sums element i of the
// weighted values in position order. partial: [B, H, chunks, 2 + D] floats (max, sum, weighted values) when the span
// has several chunks; with one chunk the block writes the normalised output itself.
template <typename T, int kGroup>
__global__ void __launch_bounds__(kThreads) decode_attention(const T* q, const T* k_cache, const T* v_cache, const int64_t* slots,
                                                            const int64_t* positions, T* out, float* partial, int heads, int kv_heads,
                                                            int dim, long long capacity, int chunks, float scale) {
  constexpr int kVec = mlnode::kPerVector<T>;
  extern __shared__ __align__(16) unsigned char shared[];
  // Two spare vectors per row: the eight threads of a 16-byte load phase (four rows, two vectors each) hit distinct banks.
  const int pitch = dim + 2 * kVec;
  // One [kChunk][pitch] buffer holds the keys, then the values: a quarter of a 128-position chunk's two buffers, so
  // four times the resident blocks.
  T* keys = reinterpret_cast<T*>(shared);
  T* vals = keys;
  float* qs = reinterpret_cast<float*>(keys + kChunk * pitch);  // [group][dim]
  float* weights = qs + kGroup * dim;                           // [group][kChunk]
  float* across = weights + kGroup * kChunk;                    // [kWarps][group]
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const int chunk = blockIdx.x, g = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
  const int warp = tid / kWarp, lane = tid % kWarp, p = tid / 2, half = tid % 2;
  const int group = heads / kv_heads, vectors = dim / kVec;
  const long long slot = slots[b], last = positions[b], start = (long long)chunk * kChunk;
  const int count = last < start ? 0 : (int)(last + 1 - start < kChunk ? last + 1 - start : kChunk);
  const long long head0 = (long long)b * heads + (long long)g * group;

  const long long row0 = ((slot * kv_heads + g) * capacity + start) * dim;
  auto stage = [&](T* rows, const T* cache) {
    for (int i = tid; i < count * vectors; i += kThreads) {
      const int row = i / vectors, v = i % vectors;
      mlnode::cp_async16(rows + row * pitch + v * kVec, cache + row0 + (long long)row * dim + v * kVec);
    }
    mlnode::cp_async_commit();
  };
  stage(keys, k_cache);
  for (int i = tid; i < group * dim; i += kThreads) qs[i] = mlnode::load_float(q + head0 * dim, i);
  mlnode::cp_async_wait<0>();
  __syncthreads();

  float score[kGroup];
#pragma unroll
  for (int h = 0; h < kGroup; h++) score[h] = 0.f;
  if (p < count) {
    // The queries are read four floats at a time (dim is a multiple of 4): the loop is bound by shared-memory loads.
    for (int v = half; v < vectors; v += 2) {
      float x[kVec];
      mlnode::unpack<T>(*reinterpret_cast<const uint4*>(keys + p * pitch + v * kVec), x);
#pragma unroll
      for (int h = 0; h < kGroup; h++)
        if (h < group)
#pragma unroll
          for (int e = 0; e < kVec; e += 4) {
            const float4 qv = *reinterpret_cast<const float4*>(qs + h * dim + v * kVec + e);
            score[h] = fmaf(qv.x, x[e], score[h]);
            score[h] = fmaf(qv.y, x[e + 1], score[h]);
            score[h] = fmaf(qv.z, x[e + 2], score[h]);
            score[h] = fmaf(qv.w, x[e + 3], score[h]);
          }
    }
  }
  float max[kGroup], sum[kGroup];
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    // a + b is b + a in IEEE arithmetic: both threads of the position hold the same score.
    float m = __fadd_rn(score[h], __shfl_xor_sync(0xffffffffu, score[h], 1));
    m = p < count ? m * scale : -INFINITY;
    score[h] = m;
    for (int offset = 16; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    if (lane == 0) across[warp * kGroup + h] = m;
  }
  __syncthreads();  // every key read: the buffer takes the values, copied while the softmax is reduced
  stage(vals, v_cache);
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    max[h] = -INFINITY;
    for (int w = 0; w < kWarps; w++) max[h] = fmaxf(max[h], across[w * kGroup + h]);
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    // Each position counted once: by the first thread of its pair.
    const float e = p < count && half == 0 ? expf(score[h] - max[h]) : 0.f;
    if (half == 0) weights[h * kChunk + p] = e;
    const float s = mlnode::warp_sum(e);
    if (lane == 0) across[warp * kGroup + h] = s;
  }
  __syncthreads();
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    sum[h] = 0.f;
    for (int w = 0; w < kWarps; w++) sum[h] += across[w * kGroup + h];
  }

  mlnode::cp_async_wait<0>();
  __syncthreads();
  if (tid >= dim) return;
  float acc[kGroup];
#pragma unroll
  for (int h = 0; h < kGroup; h++) acc[h] = 0.f;
  // Four positions at a time, their weights read as one float4 per head (weights past count are 0).
  for (int t = 0; t < count; t += 4) {
    float value[4];
#pragma unroll
    for (int j = 0; j < 4; j++) value[j] = t + j < count ? mlnode::load_float(vals + (t + j) * pitch, tid) : 0.f;
#pragma unroll
    for (int h = 0; h < kGroup; h++)
      if (h < group) {
        const float4 w = *reinterpret_cast<const float4*>(weights + h * kChunk + t);
        acc[h] = fmaf(w.x, value[0], acc[h]);
        acc[h] = fmaf(w.y, value[1], acc[h]);
        acc[h] = fmaf(w.z, value[2], acc[h]);
        acc[h] = fmaf(w.w, value[3], acc[h]);
      }
  }
#pragma unroll
  for (int h = 0; h < kGroup; h++) {
    if (h >= group) break;
    if (chunks == 1) {
      out[(head0 + h) * dim + tid] = mlnode::from_float<T>(acc[h] / sum[h]);
    } else {
      float* part = partial + ((head0 + h) * chunks + chunk) * (2 + dim);
      if (tid == 0) {
        part[0] = max[h];
        part[1] = sum[h];
      }
      part[2 + tid] = acc[h];
    }
  }
}

// One block per (sequence, head): the chunks' partials merged in chunk order.
template <typename T>
__global__ void decode_attention_combine(const float* partial, T* out, int chunks, int dim) {
  mlnode::let_dependents_start();
  mlnode::wait_for_prior_grids();
  const long long head = blockIdx.x;
  const float* part = partial + head * chunks * (2 + dim);
  float m = -INFINITY;
  for (int c = 0; c < chunks; c++) m = fmaxf(m, part[c * (2 + dim)]);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float l = 0.f, a = 0.f;
    for (int c = 0; c < chunks; c++) {
      const float cm = part[c * (2 + dim)];
      if (cm == -INFINITY) continue;
      const float f = expf(cm - m);
      l = fmaf(part[c * (2 + dim) + 1], f, l);
      a = fmaf(part[c * (2 + dim) + 2 + i], f, a);
    }
    out[head * dim + i] = mlnode::from_float<T>(a / l);
  }
}

long long chunk_count(long long span) { return (span + kChunk - 1) / kChunk; }

template <typename T, int kGroup>
mlnode_status launch_attention(const void* q, const void* k_cache, const void* v_cache, const int64_t* slots, const int64_t* positions,
                               void* out, float* partial, int batch, int heads, int kv_heads, int dim, long long capacity, int chunks,
                               float scale, cudaStream_t s) {
  const int pitch = dim + 2 * mlnode::kPerVector<T>;
  const size_t shared = sizeof(T) * kChunk * pitch + sizeof(float) * (kGroup * dim + kGroup * kChunk + kWarps * kGroup);
  auto kernel = decode_attention<T, kGroup>;
  if (shared > 48 * 1024) {
    const cudaError_t error = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
    if (error != cudaSuccess) return mlnode::fail(MLNODE_CUDA_ERROR, "decode_attention: %zu bytes of shared memory: %s", shared, cudaGetErrorString(error));
  }
  return mlnode::check_launch("decode_attention",
                              mlnode::launch_chained(kernel, dim3(chunks, kv_heads, batch), kThreads, shared, s, static_cast<const T*>(q),
                                                     static_cast<const T*>(k_cache), static_cast<const T*>(v_cache), slots, positions,
                                                     static_cast<T*>(out), partial, heads, kv_heads, dim, capacity, chunks, scale));
}

}  // namespace

MLNODE_API mlnode_status mlnode_decode_qkv(const void* qkv, const void* q_norm, const void* k_norm, float eps, const void* cos,
                                           const void* sin, void* k_cache, void* v_cache, const int64_t* slots,
                                           const int64_t* positions, void* q_out, int32_t batch, int32_t heads, int32_t kv_heads,
                                           int32_t head_dim, int64_t capacity, int32_t dtype, void* stream) {
  if (qkv == nullptr || cos == nullptr || sin == nullptr || k_cache == nullptr || v_cache == nullptr || slots == nullptr ||
      positions == nullptr || q_out == nullptr || (q_norm == nullptr) != (k_norm == nullptr))
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: null tensor pointer (q and k norms go together)");
  if (batch < 0 || heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || head_dim <= 0 || head_dim % 2 != 0 || head_dim > 512 || capacity <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: batch %d, heads %d, kv heads %d, head dim %d, capacity %lld", batch, heads,
                        kv_heads, head_dim, (long long)capacity);
  if (!(eps >= 0.f)) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_qkv: eps %g", eps);
  if (batch == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "decode_qkv", [&](auto zero) {
    using T = decltype(zero);
    const long long items = (long long)batch * (heads + 2 * kv_heads);
    const auto kernel = head_dim <= 4 * kWarp ? decode_qkv<T, 4> : head_dim <= 8 * kWarp ? decode_qkv<T, 8> : decode_qkv<T, 16>;
    return mlnode::check_launch(
        "decode_qkv", mlnode::launch_chained(kernel, (unsigned)((items + kQkvWarps - 1) / kQkvWarps), kQkvWarps * kWarp,
                                             sizeof(float) * kQkvWarps * head_dim, s, static_cast<const T*>(qkv), static_cast<const T*>(q_norm),
                                             static_cast<const T*>(k_norm), eps, static_cast<const T*>(cos), static_cast<const T*>(sin),
                                             static_cast<T*>(k_cache), static_cast<T*>(v_cache), slots, positions, static_cast<T*>(q_out),
                                             batch, heads, kv_heads, head_dim, capacity));
  });
}

MLNODE_API mlnode_status mlnode_decode_attention_workspace(int32_t batch, int32_t heads, int32_t head_dim, int64_t span, int64_t* floats) {
  if (floats == nullptr || batch < 0 || heads <= 0 || head_dim <= 0 || span <= 0)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention_workspace: batch %d, heads %d, head dim %d, span %lld", batch, heads,
                        head_dim, (long long)span);
  const long long chunks = chunk_count(span);
  *floats = chunks == 1 ? 0 : (long long)batch * heads * chunks * (2 + head_dim);
  return MLNODE_OK;
}

MLNODE_API mlnode_status mlnode_decode_attention(const void* q, const void* k_cache, const void* v_cache, const int64_t* slots,
                                                 const int64_t* positions, void* out, float* workspace, int32_t batch, int32_t heads,
                                                 int32_t kv_heads, int32_t head_dim, int64_t capacity, int64_t span, float scale,
                                                 int32_t dtype, void* stream) {
  if (q == nullptr || k_cache == nullptr || v_cache == nullptr || slots == nullptr || positions == nullptr || out == nullptr)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: null tensor pointer");
  const int group = kv_heads > 0 ? heads / kv_heads : 0;
  if (batch < 0 || kv_heads <= 0 || heads % kv_heads != 0 || group > 16 || head_dim <= 0 || head_dim > kWarps * kWarp || span <= 0 ||
      span > capacity)
    return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: batch %d, heads %d, kv heads %d, head dim %d, span %lld, capacity %lld",
                        batch, heads, kv_heads, head_dim, (long long)span, (long long)capacity);
  const long long chunks = chunk_count(span);
  if (chunks > 1 && workspace == nullptr) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: a span of %lld needs a workspace", (long long)span);
  if (chunks > 65535) return mlnode::fail(MLNODE_INVALID_ARGUMENT, "decode_attention: span %lld is too long", (long long)span);
  if (batch == 0) return MLNODE_OK;
  auto s = static_cast<cudaStream_t>(stream);
  return mlnode::dispatch_float(static_cast<mlnode_dtype>(dtype), "decode_attention", [&](auto zero) {
    using T = decltype(zero);
    if (head_dim % mlnode::kPerVector<T> != 0)
      return mlnode::fail(MLNODE_UNSUPPORTED, "decode_attention: head dim %d is not a multiple of %d", head_dim, mlnode::kPerVector<T>);
    const auto launch = group <= 4 ? launch_attention<T, 4> : group <= 8 ? launch_attention<T, 8> : launch_attention<T, 16>;
    const mlnode_status status = launch(q, k_cache, v_cache, slots, positions, out, workspace, batch, heads, kv_heads, head_dim, capacity, (int)chunks, scale, s);
    if (status != MLNODE_OK || chunks == 1) return status;
    return mlnode::check_launch("decode_attention_combine", mlnode::launch_chained(decode_attention_combine<T>, (unsigned)((long long)batch * heads),
                                                                                   128, 0, s, static_cast<const float*>(workspace),
                                                                                   static_cast<T*>(out), (int)chunks, head_dim));
  });
}
