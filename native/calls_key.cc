// Key generation and wrapping.
#include <vector>

#include "addon_data.h"
#include "attribute_read.h"
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
// With read lists, the pair's attributes are read in the same job (one wake-up instead of one
// per read, the reads on guessed buffers: attribute_read.h). A read that fails does not fail
// the job: the pair exists, so the job resolves with both handles and the read's CK_RV
// (readError) instead of the attributes, and the caller rolls back as it does after any
// failure, seeing whether its C_DestroyObject worked.
class GenerateKeyPairJob : public Job {
 public:
  GenerateKeyPairJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_GenerateKeyPair"), session_(session) {}
  Mechanism mechanism;
  Template publicTemplate;
  Template privateTemplate;
  bool withReads = false;
  AttributeRead publicRead;
  AttributeRead privateRead;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = f->C_GenerateKeyPair(session_, mechanism.get(), publicTemplate.data(), publicTemplate.size(),
                                    privateTemplate.data(), privateTemplate.size(), &publicKey_, &privateKey_);
    if (rv != CKR_OK || !withReads) return rv;
    readRv_ = publicRead.Read(f, session_, publicKey_);
    if (readRv_ == CKR_OK) readRv_ = privateRead.Read(f, session_, privateKey_);
    return CKR_OK;
  }
  napi_value Result(napi_env env) override {
    AddonData* data = AddonData::Get(env);
    Napi::Object result = Napi::Object::New(env);
    result.Set(data->Get(env, Key::PublicKey), FromHandle(env, publicKey_, lib_->handles.objects));
    result.Set(data->Get(env, Key::PrivateKey), FromHandle(env, privateKey_, lib_->handles.objects));
    if (withReads && readRv_ != CKR_OK) {
      result.Set(data->Get(env, Key::ReadError), Napi::Number::New(env, static_cast<double>(readRv_)));
    } else if (withReads) {
      result.Set(data->Get(env, Key::PublicAttributes), publicRead.ToJs(env));
      result.Set(data->Get(env, Key::PrivateAttributes), privateRead.ToJs(env));
    }
    return result;
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE publicKey_ = CK_INVALID_HANDLE;
  CK_OBJECT_HANDLE privateKey_ = CK_INVALID_HANDLE;
  CK_RV readRv_ = CKR_OK;  // the first failed C_GetAttributeValue of the reads
};

Napi::Value ModuleWrap::GenerateKeyPair(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<GenerateKeyPairJob>(lib_, session);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  job->publicTemplate.Parse(env, Arg(info, 2), "publicTemplate");
  job->privateTemplate.Parse(env, Arg(info, 3), "privateTemplate");
  napi_value publicRead = Arg(info, 4), privateRead = Arg(info, 5);
  const napi_valuetype pt = TypeOf(env, publicRead, "publicRead"), qt = TypeOf(env, privateRead, "privateRead");
  if (pt != napi_undefined || qt != napi_undefined) {
    job->withReads = true;
    job->publicRead = AttributeRead(ToUlongArray(env, publicRead, "publicRead"));
    job->privateRead = AttributeRead(ToUlongArray(env, privateRead, "privateRead"));
  }
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
