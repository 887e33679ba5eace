// One PKCS#11 call (or a short fixed sequence) run off the event loop by the
// Dispatcher and settled as a Promise. Arguments are parsed into the job's own
// members on the loop thread before Queue(); the job frees them when it is
// settled.
#ifndef KMU11_JOB_H
#define KMU11_JOB_H

#include <napi.h>

#include <cstddef>
#include <memory>
#include <string>

#include "library.h"
#include "pkcs11.h"

namespace kmu11 {

class Job {
 public:
  Job(std::shared_ptr<Library> lib, const char* fn) : lib_(std::move(lib)), fn_(fn) {}
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  virtual ~Job() = default;

  // Takes ownership of the job and returns its Promise. Jobs given the same
  // `session` of the same library run one at a time, in the order queued.
  static Napi::Value Queue(Napi::Env env, std::unique_ptr<Job> job, CK_SESSION_HANDLE session = CK_INVALID_HANDLE);
  // Queue, except that when `session` has nothing queued or running the call runs here, on the
  // loop thread, and the Promise is settled before this returns: no hand-off to a lane and back.
  // Only for calls the caller knows to be short and local (an in-process software token); a
  // networked module's round trip must never block the event loop.
  static Napi::Value RunHereIfIdle(Napi::Env env, std::unique_ptr<Job> job, CK_SESSION_HANDLE session);

 protected:
  // Lane thread. The default enters the library (so C_Finalize waits for us)
  // and calls Run; jobs that manage the library itself override this.
  virtual void Execute();
  virtual CK_RV Run(CK_FUNCTION_LIST* f) = 0;
  // Loop thread, on success: the resolution value.
  virtual napi_value Result(napi_env env);
  // Loop thread, always, before the Promise settles.
  virtual void Done(napi_env) {}
  virtual bool NeedsLibrary() const { return true; }

  std::shared_ptr<Library> lib_;
  const char* fn_;           // the PKCS#11 function an error is reported against
  CK_RV rv_ = CKR_OK;
  std::string error_;        // a failure that is not a CK_RV (e.g. dlopen)

 private:
  friend class Dispatcher;
  // Lane thread: a C++ exception (bad_alloc, …) becomes CKR_HOST_MEMORY / CKR_GENERAL_ERROR.
  static void Execute(Job* job) noexcept;
  // Loop thread: resolves or rejects the job's Promise and deletes the job.
  static void Settle(napi_env env, Job* job) noexcept;

  napi_deferred deferred_ = nullptr;
  // The Dispatcher's bookkeeping.
  size_t lane_ = 0;
  bool bound_ = false;
  const void* owner_ = nullptr;
  CK_SESSION_HANDLE session_key_ = CK_INVALID_HANDLE;
};

}  // namespace kmu11

#endif
