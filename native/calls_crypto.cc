// Single-part signing and verification, random numbers.
#include <vector>

#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// ------------------------------------------------- C_SignInit + C_Sign
class SignJob : public Job {
 public:
  SignJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
      : Job(std::move(lib), "C_SignInit"), session_(session), key_(key) {}
  Mechanism mechanism;
  std::vector<CK_BYTE> data;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = f->C_SignInit(session_, mechanism.get(), key_);
    if (rv != CKR_OK) return rv;
    fn_ = "C_Sign";
    CK_BYTE* in = data.empty() ? nullptr : data.data();
    CK_ULONG length = 0;
    rv = f->C_Sign(session_, in, data.size(), nullptr, &length);  // length query keeps the operation active
    if (rv != CKR_OK) return rv;
    if (length > kMaxValueLength) return CKR_GENERAL_ERROR;
    for (int attempt = 0; attempt < 4; ++attempt) {
      if (length > kMaxValueLength) return CKR_GENERAL_ERROR;
      signature_.resize(length ? length : 1);
      rv = f->C_Sign(session_, in, data.size(), signature_.data(), &length);
      if (rv == CKR_BUFFER_TOO_SMALL) continue;
      if (rv == CKR_OK && length < signature_.size()) signature_.resize(length);
      return rv;
    }
    return CKR_BUFFER_TOO_SMALL;
  }
  napi_value Result(napi_env env) override { return FromBytes(env, signature_.data(), signature_.size()); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE key_;
  std::vector<CK_BYTE> signature_;
};

Napi::Value ModuleWrap::Sign(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE key = ObjectArg(info, 2, "key");
  auto job = std::make_unique<SignJob>(lib_, session, key);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  ToBytes(env, Arg(info, 3), "data", job->data, false);
  return Job::Queue(info.Env(), std::move(job), session);
}

// --------------------------------------------- C_VerifyInit + C_Verify
class VerifyJob : public Job {
 public:
  VerifyJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
      : Job(std::move(lib), "C_VerifyInit"), session_(session), key_(key) {}
  Mechanism mechanism;
  std::vector<CK_BYTE> data;
  std::vector<CK_BYTE> signature;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = f->C_VerifyInit(session_, mechanism.get(), key_);
    if (rv != CKR_OK) return rv;
    fn_ = "C_Verify";
    return f->C_Verify(session_, data.empty() ? nullptr : data.data(), data.size(),
                       signature.empty() ? nullptr : signature.data(), signature.size());
  }
  napi_value Result(napi_env env) override { return Napi::Boolean::New(env, true); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE key_;
};

Napi::Value ModuleWrap::Verify(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE key = ObjectArg(info, 2, "key");
  auto job = std::make_unique<VerifyJob>(lib_, session, key);
  job->mechanism.Parse(env, Arg(info, 1), "mechanism");
  ToBytes(env, Arg(info, 3), "data", job->data, false);
  ToBytes(env, Arg(info, 4), "signature", job->signature, false);
  return Job::Queue(info.Env(), std::move(job), session);
}

// ------------------------------------------------------- C_GenerateRandom
class GenerateRandomJob : public Job {
 public:
  GenerateRandomJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_ULONG length)
      : Job(std::move(lib), "C_GenerateRandom"), session_(session), length_(length) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    random_.resize(length_);
    if (length_ == 0) return CKR_OK;
    return f->C_GenerateRandom(session_, random_.data(), length_);
  }
  napi_value Result(napi_env env) override { return FromBytes(env, random_.data(), random_.size()); }

 private:
  CK_SESSION_HANDLE session_;
  CK_ULONG length_;
  std::vector<CK_BYTE> random_;
};

Napi::Value ModuleWrap::GenerateRandom(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_ULONG length = ToUlong(env, Arg(info, 1), "length");
  if (length > (1UL << 30)) throw Napi::RangeError::New(env, "length must be at most 1 GiB");
  return Job::Queue(info.Env(), std::make_unique<GenerateRandomJob>(lib_, session, length), session);
}

}  // namespace kmu11
