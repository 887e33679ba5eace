// Unwrapping, object creation and single-part encryption/decryption (the key-transfer
// commands: unWrapKey, imSymKey, importPubKey, importPrivateKey, aesWrapUnwrap).
#include <vector>

#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// ------------------------------------------------------------ C_UnwrapKey
class UnwrapKeyJob : public Job {
 public:
  UnwrapKeyJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE unwrapping)
      : Job(std::move(lib), "C_UnwrapKey"), session_(session), unwrapping_(unwrapping) {}
  Mechanism mechanism;
  std::vector<CK_BYTE> wrapped;
  Template attributes;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_UnwrapKey(session_, mechanism.get(), unwrapping_, wrapped.empty() ? nullptr : wrapped.data(),
                          wrapped.size(), attributes.data(), attributes.size(), &key_);
  }
  void Done(napi_env env) override { mechanism.Finish(env, rv_ == CKR_OK && error_.empty()); }
  napi_value Result(napi_env env) override { return FromHandle(env, key_, lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE unwrapping_;
  CK_OBJECT_HANDLE key_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::UnwrapKey(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE unwrapping = ObjectArg(info, 2, "unwrappingKey");
  auto job = std::make_unique<UnwrapKeyJob>(lib_, session, unwrapping);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  ToBytes(env, Arg(info, 3), "wrapped", job->wrapped, false);
  job->attributes.Parse(env, Arg(info, 4), "template");
  return Job::Queue(info.Env(), std::move(job), session);
}

// --------------------------------------------------------- C_CreateObject
class CreateObjectJob : public Job {
 public:
  CreateObjectJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_CreateObject"), session_(session) {}
  Template attributes;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_CreateObject(session_, attributes.data(), attributes.size(), &object_);
  }
  napi_value Result(napi_env env) override { return FromHandle(env, object_, lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::CreateObject(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<CreateObjectJob>(lib_, session);
  job->attributes.Parse(env, Arg(info, 1), "template");
  return Job::Queue(info.Env(), std::move(job), session);
}

// ------------------------------ C_EncryptInit + C_Encrypt, C_DecryptInit + C_Decrypt
class CipherJob : public Job {
 public:
  CipherJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key, bool encrypt)
      : Job(std::move(lib), encrypt ? "C_EncryptInit" : "C_DecryptInit"), session_(session), key_(key), encrypt_(encrypt) {}
  Mechanism mechanism;
  std::vector<CK_BYTE> data;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = encrypt_ ? f->C_EncryptInit(session_, mechanism.get(), key_) : f->C_DecryptInit(session_, mechanism.get(), key_);
    if (rv != CKR_OK) return rv;
    fn_ = encrypt_ ? "C_Encrypt" : "C_Decrypt";
    CK_BYTE* in = data.empty() ? nullptr : data.data();
    CK_ULONG length = 0;
    // The length query keeps the operation active (PKCS#11 5.2).
    rv = encrypt_ ? f->C_Encrypt(session_, in, data.size(), nullptr, &length)
                  : f->C_Decrypt(session_, in, data.size(), nullptr, &length);
    if (rv != CKR_OK) return rv;
    for (int attempt = 0; attempt < 4; ++attempt) {
      out_.resize(length ? length : 1);
      rv = encrypt_ ? f->C_Encrypt(session_, in, data.size(), out_.data(), &length)
                    : f->C_Decrypt(session_, in, data.size(), out_.data(), &length);
      if (rv == CKR_BUFFER_TOO_SMALL) continue;
      if (rv == CKR_OK) out_.resize(length);
      return rv;
    }
    return CKR_BUFFER_TOO_SMALL;
  }
  void Done(napi_env env) override { mechanism.Finish(env, rv_ == CKR_OK && error_.empty()); }
  napi_value Result(napi_env env) override { return FromBytes(env, out_.data(), out_.size()); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE key_;
  bool encrypt_;
  std::vector<CK_BYTE> out_;
};

Napi::Value ModuleWrap::QueueCipher(const Napi::CallbackInfo& info, bool encrypt) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE key = ObjectArg(info, 2, "key");
  auto job = std::make_unique<CipherJob>(lib_, session, key, encrypt);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  ToBytes(env, Arg(info, 3), "data", job->data, false);
  return Job::Queue(info.Env(), std::move(job), session);
}

Napi::Value ModuleWrap::Encrypt(const Napi::CallbackInfo& info) { return QueueCipher(info, true); }
Napi::Value ModuleWrap::Decrypt(const Napi::CallbackInfo& info) { return QueueCipher(info, false); }

}  // namespace kmu11
