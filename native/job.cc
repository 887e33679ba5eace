#include "job.h"

#include <new>
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

Napi::Value Job::RunHereIfIdle(Napi::Env env, std::unique_ptr<Job> job, CK_SESSION_HANDLE session) {
  if (!job->lib_ || !AddonData::Get(env)->dispatcher->Idle(job->lib_.get(), session)) {
    return Queue(env, std::move(job), session);
  }
  napi_value promise;
  if (napi_create_promise(env, &job->deferred_, &promise) != napi_ok) {
    throw Napi::Error::New(env, "cannot create a Promise");
  }
  Execute(job.get());
  Settle(env, job.release());
  return Napi::Value(env, promise);
}

void Job::Execute(Job* job) noexcept {
  try {
    job->Execute();
  } catch (const std::bad_alloc&) {
    job->rv_ = CKR_HOST_MEMORY;
  } catch (...) {
    job->rv_ = CKR_GENERAL_ERROR;
  }
}

void Job::Execute() {
  Library::Call call(*lib_);
  if (call.functions() == nullptr) {
    rv_ = CKR_CRYPTOKI_NOT_INITIALIZED;
    return;
  }
  rv_ = Run(call.functions());
}

napi_value Job::Result(napi_env env) { return Napi::Env(env).Undefined(); }

namespace {

// The rejection for a C++ exception while settling; if even that cannot be made, undefined, so
// the Promise still settles.
napi_value Fallback(napi_env env, CK_RV rv, const char* fn) noexcept {
  try {
    return MakeCkError(env, rv, fn);
  } catch (...) {
    bool pending = false;
    napi_value ignored = nullptr, undefined = nullptr;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    // Settle rejects with whatever this is; if even undefined cannot be had, the environment is
    // going away and nothing is left to settle.
    if (napi_get_undefined(env, &undefined) != napi_ok) return nullptr;
    return undefined;
  }
}

}  // namespace

void Job::Settle(napi_env env, Job* raw) noexcept {
  std::unique_ptr<Job> job(raw);
  napi_handle_scope scope = nullptr;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;  // the environment is going away
  napi_value outcome = nullptr;
  bool ok = false;
  try {
    Napi::Env e(env);
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
  } catch (const std::bad_alloc&) {
    outcome = Fallback(env, CKR_HOST_MEMORY, job->fn_);
    ok = false;
  } catch (...) {
    outcome = Fallback(env, CKR_GENERAL_ERROR, job->fn_);
    ok = false;
  }
  if (outcome == nullptr) {
    outcome = Fallback(env, CKR_GENERAL_ERROR, job->fn_);
    ok = false;
  }
  if (outcome == nullptr) {
    napi_close_handle_scope(env, scope);
    return;
  }
  // Only fails when the environment is shutting down; nothing is left to tell.
  if (ok) {
    napi_resolve_deferred(env, job->deferred_, outcome);
  } else {
    napi_reject_deferred(env, job->deferred_, outcome);
  }
  napi_close_handle_scope(env, scope);
}

}  // namespace kmu11
