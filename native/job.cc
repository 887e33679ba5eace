#include "job.h"

#include "addon_data.h"
#include "errors.h"

namespace kmu11 {

Napi::Value Job::Queue(Napi::Env env, std::unique_ptr<Job> job) {
  napi_value promise;
  if (napi_create_promise(env, &job->deferred_, &promise) != napi_ok) {
    throw Napi::Error::New(env, "cannot create a Promise");
  }
  if (job->NeedsLibrary() && !job->lib_) {
    // Closed or never initialized handle: nothing to run.
    napi_reject_deferred(env, job->deferred_, MakeCkError(env, CKR_CRYPTOKI_NOT_INITIALIZED, job->fn_));
    return Napi::Value(env, promise);
  }
  napi_value resourceName = AddonData::Get(env)->Get(env, Key::ResourceName);
  Job* raw = job.get();
  if (napi_create_async_work(env, nullptr, resourceName, OnExecute, OnComplete, raw, &raw->work_) != napi_ok ||
      napi_queue_async_work(env, raw->work_) != napi_ok) {
    if (raw->work_) napi_delete_async_work(env, raw->work_);
    napi_reject_deferred(env, raw->deferred_, Napi::Error::New(env, "cannot queue work").Value());
    return Napi::Value(env, promise);
  }
  job.release();  // owned by the async work until OnComplete
  return Napi::Value(env, promise);
}

void Job::OnExecute(napi_env, void* data) { static_cast<Job*>(data)->Execute(); }

void Job::OnComplete(napi_env env, napi_status status, void* data) {
  auto* job = static_cast<Job*>(data);
  napi_delete_async_work(env, job->work_);
  job->work_ = nullptr;
  if (status == napi_cancelled) job->error_ = std::string(job->fn_) + " cancelled";
  Settle(env, job);
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
