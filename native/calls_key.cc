// Key generation and wrapping.
#include <vector>

#include "addon_data.h"
#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// ---------------------------------------------------------- C_GenerateKey
class GenerateKeyJob : public Job {
 public:
  GenerateKeyJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_GenerateKey"), session_(session) {}
  Mechanism mechanism;
  Template attributes;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_GenerateKey(session_, mechanism.get(), attributes.data(), attributes.size(), &key_);
  }
  napi_value Result(napi_env env) override { return FromHandle(env, key_, lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE key_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::GenerateKey(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<GenerateKeyJob>(lib_, session);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  job->attributes.Parse(env, Arg(info, 2), "template");
  return Job::Queue(info.Env(), std::move(job), session);
}

// ------------------------------------------------------ C_GenerateKeyPair
class GenerateKeyPairJob : public Job {
 public:
  GenerateKeyPairJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_GenerateKeyPair"), session_(session) {}
  Mechanism mechanism;
  Template publicTemplate;
  Template privateTemplate;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_GenerateKeyPair(session_, mechanism.get(), publicTemplate.data(), publicTemplate.size(),
                                privateTemplate.data(), privateTemplate.size(), &publicKey_, &privateKey_);
  }
  napi_value Result(napi_env env) override {
    AddonData* data = AddonData::Get(env);
    napi_value keyPublic = data->Get(env, Key::PublicKey);
    napi_value keyPrivate = data->Get(env, Key::PrivateKey);
    Napi::Object result = Napi::Object::New(env);
    result.Set(keyPublic, FromHandle(env, publicKey_, lib_->handles.objects));
    result.Set(keyPrivate, FromHandle(env, privateKey_, lib_->handles.objects));
    return result;
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE publicKey_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE privateKey_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::GenerateKeyPair(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<GenerateKeyPairJob>(lib_, session);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  job->publicTemplate.Parse(env, Arg(info, 2), "publicTemplate");
  job->privateTemplate.Parse(env, Arg(info, 3), "privateTemplate");
  return Job::Queue(info.Env(), std::move(job), session);
}

// -------------------------------------------------------------- C_WrapKey
class WrapKeyJob : public Job {
 public:
  WrapKeyJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE wrapping, CK_OBJECT_HANDLE key)
      : Job(std::move(lib), "C_WrapKey"), session_(session), wrapping_(wrapping), key_(key) {}
  Mechanism mechanism;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    for (int attempt = 0; attempt < 4; ++attempt) {
      CK_ULONG length = 0;
      CK_RV rv = f->C_WrapKey(session_, mechanism.get(), wrapping_, key_, nullptr, &length);
      if (rv != CKR_OK) return rv;
      if (length > kMaxValueLength) return CKR_GENERAL_ERROR;
      wrapped_.resize(length);
      rv = f->C_WrapKey(session_, mechanism.get(), wrapping_, key_, wrapped_.data(), &length);
      if (rv == CKR_BUFFER_TOO_SMALL) continue;
      if (rv == CKR_OK && length < wrapped_.size()) wrapped_.resize(length);
      return rv;
    }
    return CKR_BUFFER_TOO_SMALL;
  }
  void Done(napi_env env) override { mechanism.Finish(env, rv_ == CKR_OK && error_.empty()); }
  napi_value Result(napi_env env) override { return FromBytes(env, wrapped_.data(), wrapped_.size()); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE wrapping_;
  CK_OBJECT_HANDLE key_;
  std::vector<CK_BYTE> wrapped_;
};

Napi::Value ModuleWrap::WrapKey(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE wrapping = ObjectArg(info, 2, "wrappingKey");
  CK_OBJECT_HANDLE key = ObjectArg(info, 3, "key");
  auto job = std::make_unique<WrapKeyJob>(lib_, session, wrapping, key);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  return Job::Queue(info.Env(), std::move(job), session);
}

}  // namespace kmu11
