#include "dispatcher.h"

#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "job.h"

namespace kmu11 {

// What the lane threads share with the loop thread. It outlives the Dispatcher
// when the environment goes away with jobs still running: those lanes finish
// their call, see `closed`, and drop the job without touching the environment.
struct Dispatcher::Shared {
  std::mutex mutex;
  std::vector<Job*> done;   // finished, not yet settled
  uv_async_t* async = nullptr;
  bool closed = false;
};

struct Dispatcher::Lane {
  size_t load = 0;  // jobs queued or running; the loop thread's bookkeeping, not locked
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<Job*> queue;
  bool stop = false;
};

Dispatcher::Dispatcher(napi_env env) : env_(env), shared_(std::make_shared<Shared>()) {
  // Runs once when the addon loads; a failure here fails the require(), never later calls.
  auto must = [env](bool ok) {
    if (!ok) throw std::runtime_error("kmu11 addon: cannot set up its event-loop handle");
  };
  uv_loop_t* loop = nullptr;
  must(napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr);
  auto* async = new uv_async_t;
  if (uv_async_init(loop, async, OnAsync) != 0) {
    delete async;
    must(false);
  }
  shared_->async = async;
  shared_->async->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(shared_->async));

  napi_value resource = nullptr, name = nullptr;
  must(napi_create_object(env, &resource) == napi_ok && napi_create_reference(env, resource, 1, &resource_) == napi_ok &&
       napi_create_string_utf8(env, "kmu11:pkcs11", NAPI_AUTO_LENGTH, &name) == napi_ok &&
       napi_async_init(env, resource, name, &context_) == napi_ok &&
       // Before the loop is closed: the handle must be closed while it still runs.
       napi_add_env_cleanup_hook(env, OnCleanup, this) == napi_ok);
}

Dispatcher::~Dispatcher() {
  if (!shutDown_) {
    napi_remove_env_cleanup_hook(env_, OnCleanup, this);
    Shutdown();
  }
}

void Dispatcher::OnCleanup(void* self) { static_cast<Dispatcher*>(self)->Shutdown(); }

void Dispatcher::Shutdown() {
  if (shutDown_) return;
  shutDown_ = true;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    shared_->closed = true;
    // Jobs finished but never settled belong to a dead environment: their
    // references cannot be released any more, so they are left as they are.
    shared_->done.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(shared_->async),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  for (auto& lane : lanes_) {
    {
      std::lock_guard<std::mutex> lock(lane->mutex);
      lane->stop = true;
      lane->queue.clear();  // never started: dropped like the above
    }
    lane->ready.notify_one();
  }
  lanes_.clear();
  if (context_) napi_async_destroy(env_, context_);
  if (resource_) napi_delete_reference(env_, resource_);
  context_ = nullptr;
  resource_ = nullptr;
}

size_t Dispatcher::PickLane(const SessionKey* key) {
  if (key) {
    auto it = affinity_.find(*key);
    if (it != affinity_.end() && (it->second.inFlight > 0 || lanes_[it->second.lane]->load == 0)) return it->second.lane;
  }
  for (size_t i = 0; i < lanes_.size(); ++i) {
    if (lanes_[i]->load == 0) return i;
  }
  if (lanes_.size() < kMaxLanes) {
    auto lane = std::make_shared<Lane>();
    try {
      std::thread(RunLane, shared_, lane).detach();
      lanes_.push_back(std::move(lane));
      return lanes_.size() - 1;
    } catch (const std::system_error& e) {
      // Out of threads: the lanes already running will do.
      if (lanes_.empty()) throw std::runtime_error(std::string("cannot start a thread for PKCS#11 calls: ") + e.what());
    }
  }
  size_t best = 0;
  for (size_t i = 1; i < lanes_.size(); ++i) {
    if (lanes_[i]->load < lanes_[best]->load) best = i;
  }
  return best;
}

void Dispatcher::Submit(Job* job, const void* owner, CK_SESSION_HANDLE session) {
  const bool bound = owner != nullptr && session != CK_INVALID_HANDLE;
  const SessionKey key(owner, session);
  const size_t index = PickLane(bound ? &key : nullptr);  // may throw: the job is still the caller's
  if (bound) {
    Affinity& a = affinity_[key];
    a.lane = index;
    ++a.inFlight;
  }
  job->lane_ = index;
  job->bound_ = bound;
  job->owner_ = owner;
  job->session_key_ = session;
  ++lanes_[index]->load;
  if (inFlight_++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(shared_->async));

  Lane& lane = *lanes_[index];
  {
    std::lock_guard<std::mutex> lock(lane.mutex);
    lane.queue.push_back(job);
  }
  lane.ready.notify_one();
}

void Dispatcher::ForgetSession(const void* owner, CK_SESSION_HANDLE session) {
  auto it = affinity_.find(SessionKey(owner, session));
  if (it != affinity_.end() && it->second.inFlight == 0) affinity_.erase(it);
}

void Dispatcher::ForgetOwner(const void* owner) {
  for (auto it = affinity_.begin(); it != affinity_.end();) {
    if (it->first.first == owner && it->second.inFlight == 0) {
      it = affinity_.erase(it);
    } else {
      ++it;
    }
  }
}

void Dispatcher::OnAsync(uv_async_t* handle) { static_cast<Dispatcher*>(handle->data)->Drain(); }

void Dispatcher::Drain() {
  std::vector<Job*> batch;
  {
    std::lock_guard<std::mutex> lock(shared_->mutex);
    batch.swap(shared_->done);
  }
  if (batch.empty()) return;
  for (Job* job : batch) {
    --lanes_[job->lane_]->load;
    if (job->bound_) {
      auto it = affinity_.find(SessionKey(job->owner_, job->session_key_));
      if (it != affinity_.end() && it->second.inFlight > 0) --it->second.inFlight;
    }
  }
  inFlight_ -= batch.size();
  if (inFlight_ == 0) uv_unref(reinterpret_cast<uv_handle_t*>(shared_->async));

  napi_handle_scope handles = nullptr;
  napi_value resource = nullptr;
  napi_callback_scope scope = nullptr;
  if (napi_open_handle_scope(env_, &handles) != napi_ok) return;  // the environment is going away
  // Closing the outermost callback scope runs process.nextTick callbacks and
  // microtasks: every promise settled here continues before the loop goes on.
  if (napi_get_reference_value(env_, resource_, &resource) != napi_ok || resource == nullptr ||
      napi_open_callback_scope(env_, resource, context_, &scope) != napi_ok) {
    scope = nullptr;  // settle anyway; the continuations run at the next checkpoint
  }
  for (Job* job : batch) Job::Settle(env_, job);
  if (scope != nullptr) napi_close_callback_scope(env_, scope);
  napi_close_handle_scope(env_, handles);
}

void Dispatcher::RunLane(std::shared_ptr<Shared> shared, std::shared_ptr<Lane> lane) {
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(lane->mutex);
      lane->ready.wait(lock, [&] { return lane->stop || !lane->queue.empty(); });
      if (lane->stop) return;
      job = lane->queue.front();
      lane->queue.pop_front();
    }
    Job::Execute(job);
    std::lock_guard<std::mutex> lock(shared->mutex);
    if (shared->closed) continue;  // the environment is gone: see Shutdown
    // One wake-up per batch: a non-empty list has one on its way already.
    const bool wake = shared->done.empty();
    shared->done.push_back(job);
    if (wake) uv_async_send(shared->async);
  }
}

}  // namespace kmu11
