// fleetmq native addon: exports only. Process-wide state lives in trie.cc / slab.cc and is
// shared by all threads; see native/README.md for who owns what. Every N-API entry point is a
// thin checked wrapper here, in one file, so that none escapes the exception guard.
#include <napi.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "epoch.h"
#include "match.h"
#include "slab.h"
#include "topic.h"
#include "trie.h"

namespace {

using fleetmq::epoch::Guard;
namespace trie = fleetmq::trie;
namespace topic = fleetmq::topic;

// Argument checks are programmer errors: they throw a TypeError and return undefined.
// node-addon-api never throws C++ exceptions here (NAPI_DISABLE_CPP_EXCEPTIONS); the C++
// standard library does (std::bad_alloc), and those are caught by Guarded below.
bool Fail(const Napi::Env& env, const char* usage) {
  Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
  return false;
}

bool IsU8(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

bool IsU32(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint32_array;
}

// Every export runs inside Guarded. The addon is compiled with C++ exceptions on (binding.gyp,
// CMakeLists.txt) because the trie and its std containers allocate: a std::bad_alloc (or any
// other C++ exception) must not unwind into N-API, which is a C interface (undefined behaviour;
// during worker.terminate() an abort, src/README.md, "Measured"). Here it becomes a JS Error with code
// ERR_FLEETMQ_NATIVE_OOM / ERR_FLEETMQ_NATIVE, thrown with napi_throw_error, which allocates no
// C++ memory. The native state stays consistent (see "Allocation failure" in native/README.md).
napi_value ThrowCaught(napi_env env, const char* code, const char* msg) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) napi_throw_error(env, code, msg);
  return nullptr;
}

template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return Fn(info);
  } catch (const std::bad_alloc&) {
    return Napi::Value(info.Env(), ThrowCaught(info.Env(), "ERR_FLEETMQ_NATIVE_OOM", "fleetmq native: out of memory"));
  } catch (const std::exception& e) {
    return Napi::Value(info.Env(), ThrowCaught(info.Env(), "ERR_FLEETMQ_NATIVE", e.what()));
  } catch (...) {
    return Napi::Value(info.Env(), ThrowCaught(info.Env(), "ERR_FLEETMQ_NATIVE", "fleetmq native: unknown C++ exception"));
  }
}

// The main thread accepts a socket, duplicates its fd and hands the copy to a worker
// (src/README.md, "Measured": Node has no way to move a socket handle between threads).
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "dupFd(fd: number)").ThrowAsJavaScriptException();
    return env.Null();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int copy = dup(fd);
  if (copy < 0) {
    Napi::Error::New(env, std::string("dup: ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Null();
  }
  return Napi::Number::New(env, copy);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "closeFd(fd: number)").ThrowAsJavaScriptException();
    return env.Null();
  }
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

// A connected pair of Unix stream sockets (close-on-exec). A worker that holds a TLS or
// WebSocket connection whose session lives on another worker keeps the encrypted / framed
// side and relays plain MQTT bytes through this pair; the owner adopts the other end like a
// TCP fd (workers/README.md, "TLS and WebSocket"). Returns [mine, theirs].
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    Napi::Error::New(env, std::string("socketpair: ") + strerror(errno)).ThrowAsJavaScriptException();
    return env.Null();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, sv[0]));
  out.Set(uint32_t{1}, Napi::Number::New(env, sv[1]));
  return out;
}

// Ends the process now with `code`, skipping Node's teardown (no exit handlers, no worker
// joins). Only for a start that cannot finish: a worker thread with a threadpool request that
// never completes (a store open on a hung or pseudo filesystem) makes process.exit() wait for
// it forever, since a worker's teardown waits for its pending requests. stdout/stderr are
// synchronous for files, pipes and TTYs on Linux, so what was written before is not lost.
Napi::Value ExitNow(const Napi::CallbackInfo& info) {
  int code = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 1;
  _exit(code);
}

// --- topics ---------------------------------------------------------------------------------

Napi::Value ValidateTopic(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    Fail(env, "validateTopic(topic: string, isFilter: boolean)");
    return env.Undefined();
  }
  std::string s = info[0].As<Napi::String>().Utf8Value();
  int rc = topic::Validate(reinterpret_cast<const uint8_t*>(s.data()), s.size(),
                           info[1].As<Napi::Boolean>().Value());
  return Napi::Number::New(env, rc);
}

Napi::Value ValidateTopicBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !IsU8(info[0]) || !info[1].IsNumber() || !info[2].IsNumber() ||
      !info[3].IsBoolean()) {
    Fail(env, "validateTopicBytes(buf: Uint8Array, off: number, len: number, isFilter: boolean)");
    return env.Undefined();
  }
  auto buf = info[0].As<Napi::Uint8Array>();
  int64_t off = info[1].As<Napi::Number>().Int64Value();
  int64_t len = info[2].As<Napi::Number>().Int64Value();
  if (off < 0 || len < 0 || static_cast<uint64_t>(off + len) > buf.ByteLength()) {
    Napi::RangeError::New(env, "validateTopicBytes: span outside buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int rc = topic::Validate(buf.Data() + off, static_cast<size_t>(len),
                           info[3].As<Napi::Boolean>().Value());
  return Napi::Number::New(env, rc);
}

Napi::Object TopicConstants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("OK", static_cast<double>(topic::kOk));
  o.Set("EMPTY", static_cast<double>(topic::kEmpty));
  o.Set("TOO_LONG", static_cast<double>(topic::kTooLong));
  o.Set("NUL", static_cast<double>(topic::kNul));
  o.Set("WILDCARD_IN_NAME", static_cast<double>(topic::kWildcardInName));
  o.Set("BAD_WILDCARD", static_cast<double>(topic::kBadWildcard));
  o.Set("TOO_MANY_LEVELS", static_cast<double>(topic::kTooManyLevels));
  o.Set("BAD_SHARE", static_cast<double>(topic::kBadShare));
  o.Set("BAD_UTF8", static_cast<double>(topic::kBadUtf8));
  o.Set("MAX_BYTES", static_cast<double>(topic::kMaxBytes));
  o.Set("MAX_LEVELS", static_cast<double>(topic::kMaxLevels));
  return o;
}

// --- trie -----------------------------------------------------------------------------------

// Every trie call pins an epoch first: the Trie* must not be freed by a racing trieDestroy.
trie::Trie* TrieArg(const Napi::CallbackInfo& info, const char* usage) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Fail(env, usage);
    return nullptr;
  }
  trie::Trie* t = trie::Lookup(info[0].As<Napi::Number>().Uint32Value());
  if (!t) Napi::Error::New(env, "unknown trie id").ThrowAsJavaScriptException();
  return t;
}

Napi::Value TrieCreate(const Napi::CallbackInfo& info) {
  uint32_t id = trie::Create();
  if (id == 0) {
    Napi::Error::New(info.Env(), "too many tries").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), id);
}

Napi::Value TrieDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Fail(env, "trieDestroy(id: number)");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, trie::Destroy(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value TrieSubscribe(const Napi::CallbackInfo& info) {
  static const char* kUsage =
      "trieSubscribe(id, filter: string, subscriber: number, options: number, subscriptionId: number)";
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber() ||
      !info[4].IsNumber()) {
    Fail(env, kUsage);
    return env.Undefined();
  }
  Guard guard;
  trie::Trie* t = TrieArg(info, kUsage);
  if (!t) return env.Undefined();
  std::string f = info[1].As<Napi::String>().Utf8Value();
  int rc = t->Subscribe(reinterpret_cast<const uint8_t*>(f.data()), f.size(),
                        info[2].As<Napi::Number>().Uint32Value(),
                        static_cast<uint8_t>(info[3].As<Napi::Number>().Uint32Value()),
                        info[4].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(env, rc);
}

Napi::Value TrieUnsubscribe(const Napi::CallbackInfo& info) {
  static const char* kUsage = "trieUnsubscribe(id, filter: string, subscriber: number)";
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsNumber()) {
    Fail(env, kUsage);
    return env.Undefined();
  }
  Guard guard;
  trie::Trie* t = TrieArg(info, kUsage);
  if (!t) return env.Undefined();
  std::string f = info[1].As<Napi::String>().Utf8Value();
  bool ok = t->Unsubscribe(reinterpret_cast<const uint8_t*>(f.data()), f.size(),
                           info[2].As<Napi::Number>().Uint32Value());
  return Napi::Boolean::New(env, ok);
}

Napi::Value TrieMatch(const Napi::CallbackInfo& info) {
  static const char* kUsage =
      "trieMatch(id, buf: Uint8Array, spans: Uint32Array, count: number, out: Uint32Array)";
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !IsU8(info[1]) || !IsU32(info[2]) || !info[3].IsNumber() ||
      !IsU32(info[4])) {
    Fail(env, kUsage);
    return env.Undefined();
  }
  auto buf = info[1].As<Napi::Uint8Array>();
  auto spans = info[2].As<Napi::Uint32Array>();
  auto out = info[4].As<Napi::Uint32Array>();
  uint32_t count = info[3].As<Napi::Number>().Uint32Value();
  if (static_cast<size_t>(count) * 2 > spans.ElementLength()) {
    Napi::RangeError::New(env, "trieMatch: count exceeds spans").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t* sp = spans.Data();
  uint64_t size = buf.ByteLength();
  for (uint32_t i = 0; i < count; i++) {
    if (static_cast<uint64_t>(sp[2 * i]) + sp[2 * i + 1] > size) {
      Napi::RangeError::New(env, "trieMatch: span outside buffer").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  Guard guard;
  trie::Trie* t = TrieArg(info, kUsage);
  if (!t) return env.Undefined();
  int64_t n = fleetmq::match::MatchBatch(t, buf.Data(), sp, count, out.Data(), out.ElementLength());
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value TrieGeneration(const Napi::CallbackInfo& info) {
  Guard guard;
  trie::Trie* t = TrieArg(info, "trieGeneration(id)");
  if (!t) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), static_cast<double>(t->Generation()));
}

Napi::Value TrieStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Guard guard;
  trie::Trie* t = TrieArg(info, "trieStats(id)");
  if (!t) return env.Undefined();
  trie::Stats s = t->GetStats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("subscriptions", static_cast<double>(s.subscriptions));
  o.Set("filters", static_cast<double>(s.filters));
  o.Set("sharedGroups", static_cast<double>(s.shared_groups));
  return o;
}

Napi::Value TrieSetCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    Fail(env, "trieSetCache(id, enabled: boolean)");
    return env.Undefined();
  }
  Guard guard;
  trie::Trie* t = TrieArg(info, "trieSetCache(id, enabled: boolean)");
  if (!t) return env.Undefined();
  t->set_cache_enabled(info[1].As<Napi::Boolean>().Value());
  return env.Undefined();
}

Napi::Value EpochPending(const Napi::CallbackInfo& info) {
  fleetmq::epoch::Collect();
  return Napi::Number::New(info.Env(), static_cast<double>(fleetmq::epoch::Pending()));
}

// --- slab ---------------------------------------------------------------------------------

namespace slab = fleetmq::slab;

// Per env (main thread or one worker): its holder index and a strong reference to the view,
// which keeps the shared memory alive until this env's cleanup hook has released its holdings
// (src/README.md, "Measured": never tie slab lifetime to GC).
struct EnvSlab {
  int holder = -1;
  napi_ref view = nullptr;
};

// Also an env cleanup hook, called by Node with no JS frame to throw into: must not throw
// (slab::Detach allocates nothing).
void SlabCleanup(void* arg) noexcept {
  auto* e = static_cast<EnvSlab*>(arg);
  if (e->holder >= 0) slab::Detach(e->holder);
  e->holder = -1;
}

EnvSlab* GetEnvSlab(napi_env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  if (data) return static_cast<EnvSlab*>(data);
  auto* e = new EnvSlab();
  napi_set_instance_data(
      env, e, [](napi_env, void* d, void*) { delete static_cast<EnvSlab*>(d); }, nullptr);
  napi_add_env_cleanup_hook(env, SlabCleanup, e);
  return e;
}

int HolderOrThrow(const Napi::Env& env) {
  EnvSlab* e = GetEnvSlab(env);
  if (e->holder < 0) Napi::Error::New(env, "slab not attached in this thread").ThrowAsJavaScriptException();
  return e->holder;
}

Napi::Value SlabAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !IsU8(info[0])) {
    Fail(env, "slabAttach(view: Uint8Array over the whole slab SharedArrayBuffer)");
    return env.Undefined();
  }
  EnvSlab* e = GetEnvSlab(env);
  if (e->holder >= 0) return Napi::Number::New(env, e->holder);
  auto view = info[0].As<Napi::Uint8Array>();
  int h = slab::Attach(view.Data(), view.ByteLength());
  if (h < 0) {
    static const char* kWhy[] = {"", "bad slab header", "another slab is attached", "no free holder"};
    Napi::Error::New(env, std::string("slabAttach: ") + kWhy[-h]).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  e->holder = h;
  if (!e->view) napi_create_reference(env, view, 1, &e->view);
  return Napi::Number::New(env, h);
}

Napi::Value SlabDetach(const Napi::CallbackInfo& info) {
  EnvSlab* e = GetEnvSlab(info.Env());
  SlabCleanup(e);
  if (e->view) {
    napi_delete_reference(info.Env(), e->view);
    e->view = nullptr;
  }
  return info.Env().Undefined();
}

Napi::Value SlabHolder(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetEnvSlab(info.Env())->holder);
}

Napi::Value SlabAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !IsU32(info[0]) || !info[1].IsNumber() || !IsU32(info[2])) {
    Fail(env, "slabAlloc(req: Uint32Array /*[size, holdersLo, holdersHi]*/, count, out: Uint32Array /*[handle, offset]*/)");
    return env.Undefined();
  }
  auto req = info[0].As<Napi::Uint32Array>();
  auto out = info[2].As<Napi::Uint32Array>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  if (static_cast<size_t>(count) * 3 > req.ElementLength() || static_cast<size_t>(count) * 2 > out.ElementLength()) {
    Napi::RangeError::New(env, "slabAlloc: count exceeds req or out").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (HolderOrThrow(env) < 0) return env.Undefined();
  const uint32_t* r = req.Data();
  uint32_t* o = out.Data();
  uint32_t i = 0;
  for (; i < count; i++) {
    uint64_t holders = r[3 * i + 1] | (static_cast<uint64_t>(r[3 * i + 2]) << 32);
    o[2 * i] = slab::Alloc(r[3 * i], holders, &o[2 * i + 1]);
    if (o[2 * i] == 0) break;
  }
  return Napi::Number::New(env, i);
}

Napi::Value SlabRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !IsU32(info[0]) || !info[1].IsNumber()) {
    Fail(env, "slabRelease(handles: Uint32Array, count)");
    return env.Undefined();
  }
  auto handles = info[0].As<Napi::Uint32Array>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  if (count > handles.ElementLength()) {
    Napi::RangeError::New(env, "slabRelease: count exceeds handles").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int holder = HolderOrThrow(env);
  if (holder < 0) return env.Undefined();
  uint32_t released = 0;
  for (uint32_t i = 0; i < count; i++) released += slab::Release(handles.Data()[i], holder);
  return Napi::Number::New(env, released);
}

Napi::Value SlabAddHolder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !IsU32(info[0]) || !info[1].IsNumber() || !info[2].IsNumber()) {
    Fail(env, "slabAddHolder(handles: Uint32Array, count, holder)");
    return env.Undefined();
  }
  auto handles = info[0].As<Napi::Uint32Array>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  if (count > handles.ElementLength()) {
    Napi::RangeError::New(env, "slabAddHolder: count exceeds handles").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (HolderOrThrow(env) < 0) return env.Undefined();
  int target = info[2].As<Napi::Number>().Int32Value();
  uint32_t added = 0;
  for (uint32_t i = 0; i < count; i++) added += slab::AddHolder(handles.Data()[i], target);
  return Napi::Number::New(env, added);
}

Napi::Value SlabStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int n = slab::ClassCount();
  Napi::Array in_use = Napi::Array::New(env, n);
  for (int c = 0; c < n; c++) in_use.Set(c, static_cast<double>(slab::InUse(c)));
  o.Set("inUse", in_use);
  o.Set("holders", static_cast<double>(slab::Holders()));
  return o;
}

Napi::Object SlabLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  const std::pair<const char*, double> kv[] = {
      {"SLAB_MAGIC", slab::kMagic}, {"SLAB_VERSION", slab::kVersion},
      {"HDR_CLASS_COUNT", slab::kHdrClassCount}, {"HDR_SLOT_COUNT", slab::kHdrSlotCount},
      {"HDR_HOLDERS_LO", slab::kHdrHoldersLo}, {"HDR_HOLDERS_HI", slab::kHdrHoldersHi},
      {"HDR_TOTAL_BYTES", slab::kHdrTotalBytes}, {"HEADER_WORDS", slab::kHeaderWords},
      {"MAX_CLASSES", slab::kMaxClasses}, {"CLASS_TABLE_WORD", slab::kClassTableWord},
      {"CLASS_WORDS", slab::kClassWords}, {"CLS_SIZE", slab::kClsSize},
      {"CLS_COUNT", slab::kClsCount}, {"CLS_FIRST_SLOT", slab::kClsFirstSlot},
      {"CLS_BITMAP_WORD", slab::kClsBitmapWord}, {"CLS_DATA_OFFSET", slab::kClsDataOffset},
      {"CLS_HINT", slab::kClsHint}, {"SLOTS_WORD", slab::kSlotsWord},
      {"SLOT_WORDS", slab::kSlotWords}, {"SLOT_STATE", slab::kSlotState},
      {"SLOT_HOLDERS_LO", slab::kSlotHoldersLo}, {"SLOT_HOLDERS_HI", slab::kSlotHoldersHi},
      {"SLOT_LENGTH", slab::kSlotLength}, {"STATE_REFS_MASK", slab::kStateRefsMask},
      {"STATE_GEN_SHIFT", slab::kStateGenShift}, {"GEN_MASK", slab::kGenMask},
      {"HANDLE_SLOT_BITS", slab::kHandleSlotBits}, {"MAX_HOLDERS", slab::kMaxHolders},
  };
  for (const auto& [k, v] : kv) o.Set(k, v);
  return o;
}

// CPU time of the calling thread: benchmarks report per-core rates that other load on the
// machine does not distort (Node 20 has no process.threadCpuUsage).
Napi::Value ThreadCpuNs(const Napi::CallbackInfo& info) {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + ts.tv_nsec);
}

Napi::Object InitExports(Napi::Env env, Napi::Object exports) {
  exports.Set("dupFd", Napi::Function::New(env, Guarded<DupFd>));
  exports.Set("closeFd", Napi::Function::New(env, Guarded<CloseFd>));
  exports.Set("exitNow", Napi::Function::New(env, Guarded<ExitNow>));
  exports.Set("socketPair", Napi::Function::New(env, Guarded<SocketPair>));
  exports.Set("validateTopic", Napi::Function::New(env, Guarded<ValidateTopic>));
  exports.Set("validateTopicBytes", Napi::Function::New(env, Guarded<ValidateTopicBytes>));
  exports.Set("topicConstants", TopicConstants(env));
  exports.Set("trieCreate", Napi::Function::New(env, Guarded<TrieCreate>));
  exports.Set("trieDestroy", Napi::Function::New(env, Guarded<TrieDestroy>));
  exports.Set("trieSubscribe", Napi::Function::New(env, Guarded<TrieSubscribe>));
  exports.Set("trieUnsubscribe", Napi::Function::New(env, Guarded<TrieUnsubscribe>));
  exports.Set("trieMatch", Napi::Function::New(env, Guarded<TrieMatch>));
  exports.Set("trieGeneration", Napi::Function::New(env, Guarded<TrieGeneration>));
  exports.Set("trieStats", Napi::Function::New(env, Guarded<TrieStats>));
  exports.Set("trieSetCache", Napi::Function::New(env, Guarded<TrieSetCache>));
  exports.Set("epochPending", Napi::Function::New(env, Guarded<EpochPending>));
  exports.Set("threadCpuNs", Napi::Function::New(env, Guarded<ThreadCpuNs>));
  exports.Set("slabAttach", Napi::Function::New(env, Guarded<SlabAttach>));
  exports.Set("slabDetach", Napi::Function::New(env, Guarded<SlabDetach>));
  exports.Set("slabHolder", Napi::Function::New(env, Guarded<SlabHolder>));
  exports.Set("slabAlloc", Napi::Function::New(env, Guarded<SlabAlloc>));
  exports.Set("slabRelease", Napi::Function::New(env, Guarded<SlabRelease>));
  exports.Set("slabAddHolder", Napi::Function::New(env, Guarded<SlabAddHolder>));
  exports.Set("slabStats", Napi::Function::New(env, Guarded<SlabStats>));
  exports.Set("slabLayout", SlabLayout(env));
  return exports;
}

// Module init is an N-API entry point too.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  try {
    return InitExports(env, exports);
  } catch (...) {
    ThrowCaught(env, "ERR_FLEETMQ_NATIVE_OOM", "fleetmq native: out of memory while loading");
    return exports;
  }
}

}  // namespace

NODE_API_MODULE(fleetmq, Init)
