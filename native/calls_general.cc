// Library lifetime, module/slot/token information, token initialization.
#include <cstring>
#include <vector>

#include "addon_data.h"
#include "dispatcher.h"
#include "errors.h"
#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

namespace {

// Fixed-size, blank-padded PKCS#11 text → trimmed JS string.
napi_value Padded(napi_env env, const CK_BYTE* text, size_t size) {
  while (size > 0 && (text[size - 1] == ' ' || text[size - 1] == '\0')) --size;
  return Napi::String::New(env, reinterpret_cast<const char*>(text), size);
}

napi_value Version(napi_env env, const CK_VERSION& v) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", Napi::Number::New(env, v.major));
  o.Set("minor", Napi::Number::New(env, v.minor));
  return o;
}

// Counters in CK_TOKEN_INFO may be CK_UNAVAILABLE_INFORMATION: reported as -1.
napi_value Counter(napi_env env, CK_ULONG v) {
  if (v == CK_UNAVAILABLE_INFORMATION || static_cast<double>(v) > kMaxSafeInteger) {
    return Napi::Number::New(env, -1);
  }
  return FromUlong(env, v);
}

// Fills a CK_ULONG list with the usual size-query / fetch / retry dance.
template <typename Fetch>
CK_RV FetchList(std::vector<CK_ULONG>& out, Fetch fetch) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    CK_ULONG count = 0;
    CK_RV rv = fetch(nullptr, &count);
    if (rv != CKR_OK) return rv;
    if (count > kMaxListCount) return CKR_GENERAL_ERROR;
    out.resize(count);
    if (count == 0) return CKR_OK;
    rv = fetch(out.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;
    if (rv != CKR_OK) return rv;
    if (count < out.size()) out.resize(count);
    return CKR_OK;
  }
  return CKR_BUFFER_TOO_SMALL;
}

}  // namespace

napi_value Arg(const Napi::CallbackInfo& info, size_t index) {
  return index < info.Length() ? static_cast<napi_value>(info[index]) : static_cast<napi_value>(info.Env().Undefined());
}

// JS ids → the module's handles (handles.h). A closed Module has no map; its calls fail anyway.
CK_SLOT_ID ModuleWrap::SlotArg(const Napi::CallbackInfo& info, size_t index) {
  CK_ULONG id = ToUlong(info.Env(), Arg(info, index), "slot");
  return lib_ ? lib_->handles.slots.ToNative(id) : id;
}

CK_SESSION_HANDLE ModuleWrap::SessionArg(const Napi::CallbackInfo& info, size_t index) {
  CK_ULONG id = ToUlong(info.Env(), Arg(info, index), "session");
  return lib_ ? lib_->handles.sessions.ToNative(id) : id;
}

CK_OBJECT_HANDLE ModuleWrap::ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  CK_ULONG id = ToUlong(info.Env(), Arg(info, index), what);
  return lib_ ? lib_->handles.objects.ToNative(id) : id;
}

// ------------------------------------------------------------ C_Initialize
class InitializeJob : public Job {
 public:
  InitializeJob(ModuleWrap* wrap, std::string path)
      : Job(nullptr, "C_Initialize"), wrap_(wrap), path_(std::move(path)) {
    self_ = Napi::Persistent(wrap->Value());
  }

 protected:
  bool NeedsLibrary() const override { return false; }
  void Execute() override {
    CK_RV rv = CKR_OK;
    lib_ = Library::Acquire(path_, error_, rv);
    if (!lib_) {
      if (error_.empty()) {
        rv_ = rv;
        fn_ = "C_GetFunctionList";
      }
      return;
    }
    rv_ = lib_->AddInitRef();
    if (rv_ != CKR_OK) lib_.reset();  // dlclose here, off the main thread
  }
  CK_RV Run(CK_FUNCTION_LIST*) override { return CKR_OK; }
  void Done(napi_env) override {
    if (lib_ && rv_ == CKR_OK && error_.empty()) {
      wrap_->lib_ = lib_;
      wrap_->state_ = ModuleWrap::State::Open;
    } else {
      wrap_->state_ = ModuleWrap::State::Closed;
    }
  }

 private:
  ModuleWrap* wrap_;
  Napi::ObjectReference self_;  // keeps the wrapper alive while we run
  std::string path_;
};

Napi::Value ModuleWrap::Initialize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::Closed) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(MakeCkError(env, CKR_CRYPTOKI_ALREADY_INITIALIZED, "C_Initialize"));
    return d.Promise();
  }
  state_ = State::Opening;
  return Job::Queue(env, std::make_unique<InitializeJob>(this, path_));
}

// -------------------------------------------------------------- C_Finalize
class FinalizeJob : public Job {
 public:
  FinalizeJob(ModuleWrap* wrap, std::shared_ptr<Library> lib)
      : Job(std::move(lib), "C_Finalize"), wrap_(wrap), owner_(lib_.get()) {
    self_ = Napi::Persistent(wrap->Value());
  }

 protected:
  void Execute() override {
    rv_ = lib_->DropInitRef();
    lib_.reset();  // the last reference dlcloses, here rather than on the main thread
  }
  CK_RV Run(CK_FUNCTION_LIST*) override { return CKR_OK; }
  void Done(napi_env env) override {
    wrap_->state_ = ModuleWrap::State::Closed;
    AddonData::Get(env)->dispatcher->ForgetOwner(owner_);
  }

 private:
  ModuleWrap* wrap_;
  const void* owner_;
  Napi::ObjectReference self_;
};

Napi::Value ModuleWrap::Finalize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (state_ != State::Open) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(MakeCkError(env, CKR_CRYPTOKI_NOT_INITIALIZED, "C_Finalize"));
    return d.Promise();
  }
  state_ = State::Closing;
  std::shared_ptr<Library> lib = std::move(lib_);  // later calls on this handle fail fast
  return Job::Queue(env, std::make_unique<FinalizeJob>(this, std::move(lib)));
}

Napi::Value ModuleWrap::PathGetter(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), path_); }

Napi::Value ModuleWrap::OpenGetter(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), state_ == State::Open);
}

// --------------------------------------------------------------- C_GetInfo
class GetInfoJob : public Job {
 public:
  using Job::Job;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return f->C_GetInfo(&info_); }
  napi_value Result(napi_env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("cryptokiVersion", Version(env, info_.cryptokiVersion));
    o.Set("manufacturerID", Padded(env, info_.manufacturerID, sizeof info_.manufacturerID));
    o.Set("flags", FromUlong(env, info_.flags));
    o.Set("libraryDescription", Padded(env, info_.libraryDescription, sizeof info_.libraryDescription));
    o.Set("libraryVersion", Version(env, info_.libraryVersion));
    return o;
  }

 private:
  CK_INFO info_{};
};

Napi::Value ModuleWrap::GetInfo(const Napi::CallbackInfo& info) {
  return Job::Queue(info.Env(), std::make_unique<GetInfoJob>(lib_, "C_GetInfo"));
}

// ----------------------------------------------------------- C_GetSlotList
class GetSlotListJob : public Job {
 public:
  GetSlotListJob(std::shared_ptr<Library> lib, bool tokenPresent)
      : Job(std::move(lib), "C_GetSlotList"), tokenPresent_(tokenPresent) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_BBOOL present = tokenPresent_ ? CK_TRUE : CK_FALSE;
    return FetchList(slots_, [&](CK_ULONG* list, CK_ULONG* count) { return f->C_GetSlotList(present, list, count); });
  }
  napi_value Result(napi_env env) override { return FromHandleArray(env, slots_.data(), slots_.size(), lib_->handles.slots); }

 private:
  bool tokenPresent_;
  std::vector<CK_ULONG> slots_;
};

Napi::Value ModuleWrap::GetSlotList(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  bool present = ToBool(env, Arg(info, 0), "tokenPresent");
  return Job::Queue(info.Env(), std::make_unique<GetSlotListJob>(lib_, present));
}

// ----------------------------------------------------------- C_GetSlotInfo
class GetSlotInfoJob : public Job {
 public:
  GetSlotInfoJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot) : Job(std::move(lib), "C_GetSlotInfo"), slot_(slot) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return f->C_GetSlotInfo(slot_, &info_); }
  napi_value Result(napi_env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("slotDescription", Padded(env, info_.slotDescription, sizeof info_.slotDescription));
    o.Set("manufacturerID", Padded(env, info_.manufacturerID, sizeof info_.manufacturerID));
    o.Set("flags", FromUlong(env, info_.flags));
    o.Set("hardwareVersion", Version(env, info_.hardwareVersion));
    o.Set("firmwareVersion", Version(env, info_.firmwareVersion));
    return o;
  }

 private:
  CK_SLOT_ID slot_;
  CK_SLOT_INFO info_{};
};

Napi::Value ModuleWrap::GetSlotInfo(const Napi::CallbackInfo& info) {
  CK_SLOT_ID slot = SlotArg(info, 0);
  return Job::Queue(info.Env(), std::make_unique<GetSlotInfoJob>(lib_, slot));
}

// ---------------------------------------------------------- C_GetTokenInfo
class GetTokenInfoJob : public Job {
 public:
  GetTokenInfoJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot)
      : Job(std::move(lib), "C_GetTokenInfo"), slot_(slot) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return f->C_GetTokenInfo(slot_, &info_); }
  napi_value Result(napi_env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("label", Padded(env, info_.label, sizeof info_.label));
    o.Set("manufacturerID", Padded(env, info_.manufacturerID, sizeof info_.manufacturerID));
    o.Set("model", Padded(env, info_.model, sizeof info_.model));
    o.Set("serialNumber", Padded(env, info_.serialNumber, sizeof info_.serialNumber));
    o.Set("flags", FromUlong(env, info_.flags));
    o.Set("maxSessionCount", Counter(env, info_.ulMaxSessionCount));
    o.Set("sessionCount", Counter(env, info_.ulSessionCount));
    o.Set("maxRwSessionCount", Counter(env, info_.ulMaxRwSessionCount));
    o.Set("rwSessionCount", Counter(env, info_.ulRwSessionCount));
    o.Set("maxPinLen", Counter(env, info_.ulMaxPinLen));
    o.Set("minPinLen", Counter(env, info_.ulMinPinLen));
    o.Set("totalPublicMemory", Counter(env, info_.ulTotalPublicMemory));
    o.Set("freePublicMemory", Counter(env, info_.ulFreePublicMemory));
    o.Set("totalPrivateMemory", Counter(env, info_.ulTotalPrivateMemory));
    o.Set("freePrivateMemory", Counter(env, info_.ulFreePrivateMemory));
    o.Set("hardwareVersion", Version(env, info_.hardwareVersion));
    o.Set("firmwareVersion", Version(env, info_.firmwareVersion));
    o.Set("utcTime", Padded(env, info_.utcTime, sizeof info_.utcTime));
    return o;
  }

 private:
  CK_SLOT_ID slot_;
  CK_TOKEN_INFO info_{};
};

Napi::Value ModuleWrap::GetTokenInfo(const Napi::CallbackInfo& info) {
  CK_SLOT_ID slot = SlotArg(info, 0);
  return Job::Queue(info.Env(), std::make_unique<GetTokenInfoJob>(lib_, slot));
}

// ------------------------------------------------------ C_GetMechanismList
class GetMechanismListJob : public Job {
 public:
  GetMechanismListJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot)
      : Job(std::move(lib), "C_GetMechanismList"), slot_(slot) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return FetchList(list_, [&](CK_ULONG* l, CK_ULONG* count) { return f->C_GetMechanismList(slot_, l, count); });
  }
  napi_value Result(napi_env env) override { return FromUlongArray(env, list_.data(), list_.size()); }

 private:
  CK_SLOT_ID slot_;
  std::vector<CK_ULONG> list_;
};

Napi::Value ModuleWrap::GetMechanismList(const Napi::CallbackInfo& info) {
  CK_SLOT_ID slot = SlotArg(info, 0);
  return Job::Queue(info.Env(), std::make_unique<GetMechanismListJob>(lib_, slot));
}

// ------------------------------------------------------ C_GetMechanismInfo
class GetMechanismInfoJob : public Job {
 public:
  GetMechanismInfoJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot, CK_MECHANISM_TYPE type)
      : Job(std::move(lib), "C_GetMechanismInfo"), slot_(slot), type_(type) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return f->C_GetMechanismInfo(slot_, type_, &info_); }
  napi_value Result(napi_env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("minKeySize", Counter(env, info_.ulMinKeySize));
    o.Set("maxKeySize", Counter(env, info_.ulMaxKeySize));
    o.Set("flags", FromUlong(env, info_.flags));
    return o;
  }

 private:
  CK_SLOT_ID slot_;
  CK_MECHANISM_TYPE type_;
  CK_MECHANISM_INFO info_{};
};

Napi::Value ModuleWrap::GetMechanismInfo(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SLOT_ID slot = SlotArg(info, 0);
  CK_MECHANISM_TYPE type = ToUlong(env, Arg(info, 1), "mechanism");
  return Job::Queue(info.Env(), std::make_unique<GetMechanismInfoJob>(lib_, slot, type));
}

// ------------------------------------------------------------ C_InitToken
class InitTokenJob : public Job {
 public:
  InitTokenJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot) : Job(std::move(lib), "C_InitToken"), slot_(slot) {}
  std::vector<CK_BYTE> pin;
  CK_UTF8CHAR label[32];

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_InitToken(slot_, pin.empty() ? nullptr : pin.data(), pin.size(), label);
  }

 private:
  CK_SLOT_ID slot_;
};

Napi::Value ModuleWrap::InitToken(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SLOT_ID slot = SlotArg(info, 0);
  auto job = std::make_unique<InitTokenJob>(lib_, slot);
  ToBytes(env, Arg(info, 1), "soPin", job->pin, true);
  std::vector<CK_BYTE> label;
  ToBytes(env, Arg(info, 2), "label", label, true);
  if (label.size() > sizeof job->label) throw Napi::TypeError::New(env, "label must be at most 32 bytes of UTF-8");
  std::memset(job->label, ' ', sizeof job->label);
  if (!label.empty()) std::memcpy(job->label, label.data(), label.size());
  return Job::Queue(info.Env(), std::move(job));
}

}  // namespace kmu11
