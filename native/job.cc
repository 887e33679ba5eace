#include "job.h"

#include <stdexcept>

#include "addon_data.h"
#include "errors.h"

namespace kmu11 {

Napi::Value Job::Queue(Napi::Env env, std::unique_ptr<Job> job, CK_SESSION_HANDLE session) {
  napi_value promise;
  if (napi_create_promise(env, &job->deferred_, &promise) != napi_ok) {
    throw Napi::Error::New(env, "cannot create a Promise");
  }
  if (job->NeedsLibrary() && !job->lib_) {
    // Closed or never initialized handle: nothing to run.
    napi_reject_deferred(env, job->deferred_, MakeCkError(env, CKR_CRYPTOKI_NOT_INITIALIZED, job->fn_));
    return Napi::Value(env, promise);
  }
  const void* owner = job->lib_.get();
  try {
    AddonData::Get(env)->dispatcher->Submit(job.get(), owner, session);
    job.release();  // settled and deleted by the Dispatcher
  } catch (const std::runtime_error& e) {
    napi_reject_deferred(env, job->deferred_, Napi::Error::New(env, e.what()).Value());
  }
  return Napi::Value(env, promise);
}

void Job::Execute() {
  Library::Call call(*lib_);
  if (call.functions() == nullptr) {
    rv_ = CKR_CRYPTOKI_NOT_INITIALIZED;
    return;
  }
  rv_ = Run(call.functions());
}

napi_value Job::Result(napi_env env) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return undefined;
}

void Job::Settle(napi_env env, Job* raw) {
  std::unique_ptr<Job> job(raw);
  Napi::Env e(env);
  Napi::HandleScope scope(e);
  napi_value outcome = nullptr;
  bool ok = false;
  try {
    job->Done(env);
    if (!job->error_.empty()) {
      outcome = Napi::Error::New(e, job->error_).Value();
    } else if (job->rv_ != CKR_OK) {
      outcome = MakeCkError(e, job->rv_, job->fn_);
    } else {
      outcome = job->Result(env);
      ok = true;
    }
  } catch (const Napi::Error& err) {
    outcome = err.Value();
    ok = false;
  }
  if (ok) {
    napi_resolve_deferred(env, job->deferred_, outcome);
  } else {
    napi_reject_deferred(env, job->deferred_, outcome);
  }
}

}  // namespace kmu11
