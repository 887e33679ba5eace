// Where jobs run: on "lanes", threads of the addon's own, each with a FIFO
// queue, instead of one napi_async_work per call on the libuv pool.
//
// - A session's calls go to one lane while any of them is queued or running,
//   so they run in the order they were made (PKCS#11 does not allow one
//   session to be used by two threads at once) and on a thread warm from the
//   session's last call. A session with nothing in flight goes back to its last
//   lane when that lane is idle; otherwise, like calls without a session, to an
//   idle lane, a new one (up to kMaxLanes), or the least busy.
// - Finished jobs come back through one uv_async_t per environment and are
//   settled in a batch inside one callback scope: one wake-up of the event
//   loop and one microtask checkpoint for everything that finished meanwhile.
// - The async handle keeps the event loop alive only while jobs are in flight.
//
// All methods but the lane threads' run on the environment's loop thread.
#ifndef KMU11_DISPATCHER_H
#define KMU11_DISPATCHER_H

#include <node_api.h>
#include <uv.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "pkcs11.h"

namespace kmu11 {

class Job;

class Dispatcher {
 public:
  // A lane blocked on a networked HSM's round trip uses no CPU: more sessions than lanes would
  // wait for each other's round trips. Lanes start only when every one is busy.
  static constexpr size_t kMaxLanes = 64;

  explicit Dispatcher(napi_env env);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Runs `job` on a lane; `owner` and `session` (CK_INVALID_HANDLE for none)
  // name the session whose calls must stay in order. Takes ownership unless it
  // throws std::runtime_error (no thread could be started).
  void Submit(Job* job, const void* owner, CK_SESSION_HANDLE session);

  // Whether `session` has no job queued or running (its next call may run anywhere).
  bool Idle(const void* owner, CK_SESSION_HANDLE session) const {
    auto it = affinity_.find(SessionKey(owner, session));
    return it == affinity_.end() || it->second.inFlight == 0;
  }

  // Forget the lane a session last used (its handle may be reused).
  void ForgetSession(const void* owner, CK_SESSION_HANDLE session);
  void ForgetOwner(const void* owner);

  // Lane threads started so far (for tests).
  size_t lanes() const { return lanes_.size(); }

 private:
  struct Shared;
  struct Lane;
  using SessionKey = std::pair<const void*, CK_SESSION_HANDLE>;
  struct Affinity {
    size_t lane;
    size_t inFlight;
  };

  static void RunLane(std::shared_ptr<Shared> shared, std::shared_ptr<Lane> lane);
  static void OnAsync(uv_async_t* handle);
  static void OnCleanup(void* self);
  void Drain();
  void Shutdown();
  size_t PickLane(const SessionKey* key);

  napi_env env_;
  std::shared_ptr<Shared> shared_;
  std::vector<std::shared_ptr<Lane>> lanes_;
  std::map<SessionKey, Affinity> affinity_;
  size_t inFlight_ = 0;
  napi_ref resource_ = nullptr;
  napi_async_context context_ = nullptr;
  bool shutDown_ = false;
};

}  // namespace kmu11

#endif
