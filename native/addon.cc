// fleetmq native addon: process-wide state shared by every thread (see DESIGN.md §3).
#include <napi.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

namespace {

// The main thread accepts a socket, duplicates its fd and hands the copy to a worker
// (DESIGN.md §7: Node has no way to move a socket handle between threads).
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("dupFd", Napi::Function::New(env, DupFd));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  return exports;
}

}  // namespace

NODE_API_MODULE(fleetmq, Init)
