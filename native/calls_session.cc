// Sessions and login.
#include <vector>

#include "addon_data.h"
#include "dispatcher.h"
#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// ---------------------------------------------------------- C_OpenSession
class OpenSessionJob : public Job {
 public:
  OpenSessionJob(std::shared_ptr<Library> lib, CK_SLOT_ID slot, CK_FLAGS flags)
      : Job(std::move(lib), "C_OpenSession"), slot_(slot), flags_(flags) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return f->C_OpenSession(slot_, flags_, nullptr, nullptr, &session_); }
  napi_value Result(napi_env env) override { return FromHandle(env, session_, lib_->handles.sessions); }

 private:
  CK_SLOT_ID slot_;
  CK_FLAGS flags_;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::OpenSession(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SLOT_ID slot = SlotArg(info, 0);
  CK_FLAGS flags = ToUlong(env, Arg(info, 1), "flags");
  return Job::Queue(info.Env(), std::make_unique<OpenSessionJob>(lib_, slot, flags));
}

// ------------------------------------------------ C_CloseSession, C_Logout
class SessionOnlyJob : public Job {
 public:
  using Call = CK_RV (*)(CK_FUNCTION_LIST*, CK_SESSION_HANDLE);
  SessionOnlyJob(std::shared_ptr<Library> lib, const char* fn, Call call, CK_SESSION_HANDLE session)
      : Job(std::move(lib), fn), call_(call), session_(session) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return call_(f, session_); }

 private:
  Call call_;
  CK_SESSION_HANDLE session_;
};

// Its lane preference goes with the session: a later session may get the handle.
class CloseSessionJob : public SessionOnlyJob {
 public:
  CloseSessionJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : SessionOnlyJob(
            std::move(lib), "C_CloseSession",
            [](CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s) { return f->C_CloseSession(s); }, session),
        owner_(lib_.get()),
        closed_(session) {}

 protected:
  void Done(napi_env env) override {
    AddonData::Get(env)->dispatcher->ForgetSession(owner_, closed_);
    if (rv_ == CKR_OK) lib_->handles.sessions.Forget(closed_);
  }

 private:
  const void* owner_;
  CK_SESSION_HANDLE closed_;
};

Napi::Value ModuleWrap::CloseSession(const Napi::CallbackInfo& info) {
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  return Job::Queue(info.Env(), std::make_unique<CloseSessionJob>(lib_, session), session);
}

Napi::Value ModuleWrap::Logout(const Napi::CallbackInfo& info) {
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<SessionOnlyJob>(
      lib_, "C_Logout", [](CK_FUNCTION_LIST* f, CK_SESSION_HANDLE s) { return f->C_Logout(s); }, session);
  return Job::Queue(info.Env(), std::move(job), session);
}

// -------------------------------------------------------------- C_Login
class LoginJob : public Job {
 public:
  LoginJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_USER_TYPE user)
      : Job(std::move(lib), "C_Login"), session_(session), user_(user) {}
  std::vector<CK_BYTE> pin;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_Login(session_, user_, pin.empty() ? nullptr : pin.data(), pin.size());
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_USER_TYPE user_;
};

Napi::Value ModuleWrap::Login(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_USER_TYPE user = ToUlong(env, Arg(info, 1), "userType");
  auto job = std::make_unique<LoginJob>(lib_, session, user);
  ToBytes(env, Arg(info, 2), "pin", job->pin, true);
  return Job::Queue(info.Env(), std::move(job), session);
}

// ------------------------------------------------------------- C_InitPIN
class InitPinJob : public Job {
 public:
  InitPinJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_InitPIN"), session_(session) {}
  std::vector<CK_BYTE> pin;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_InitPIN(session_, pin.empty() ? nullptr : pin.data(), pin.size());
  }

 private:
  CK_SESSION_HANDLE session_;
};

Napi::Value ModuleWrap::InitPIN(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<InitPinJob>(lib_, session);
  ToBytes(env, Arg(info, 1), "pin", job->pin, true);
  return Job::Queue(info.Env(), std::move(job), session);
}

}  // namespace kmu11
