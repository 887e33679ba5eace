// PKCS#11 handles (sessions, objects, slots) are opaque CK_ULONGs; some modules
// use all 64 bits (tpm2-pkcs11's session handles are above 2^53), which a JS
// number cannot hold. Values below 2^52 go to JS as themselves (every module
// seen in practice, and no cost per call); larger ones get a stable small id
// at or above 2^52, per library and kind, so callers keep `number` handles.
#ifndef KMU11_HANDLES_H
#define KMU11_HANDLES_H

#include <mutex>
#include <unordered_map>

#include "pkcs11.h"

namespace kmu11 {

class HandleMap {
 public:
  static constexpr CK_ULONG kFirstId = 1UL << 52;
  static constexpr CK_ULONG kLastId = (1UL << 53) - 1;

  // JS id → the module's handle; an id never given out → CK_INVALID_HANDLE, which the module
  // rejects as an invalid handle.
  CK_ULONG ToNative(CK_ULONG id) {
    if (id < kFirstId) return id;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = toNative_.find(id);
    return it == toNative_.end() ? CK_INVALID_HANDLE : it->second;
  }

  // The module's handle → its JS id (the same id every time until forgotten). 0 when the ids
  // ran out (2^52 of them), which callers report as an error.
  CK_ULONG ToJs(CK_ULONG handle) {
    if (handle < kFirstId) return handle;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = toJs_.find(handle);
    if (it != toJs_.end()) return it->second;
    if (next_ > kLastId) return 0;
    CK_ULONG id = next_++;
    toJs_.emplace(handle, id);
    toNative_.emplace(id, handle);
    return id;
  }

  // The handle is gone (session closed, object destroyed): drop its id.
  void Forget(CK_ULONG handle) {
    if (handle < kFirstId) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = toJs_.find(handle);
    if (it == toJs_.end()) return;
    toNative_.erase(it->second);
    toJs_.erase(it);
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    toJs_.clear();
    toNative_.clear();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<CK_ULONG, CK_ULONG> toJs_;
  std::unordered_map<CK_ULONG, CK_ULONG> toNative_;
  CK_ULONG next_ = kFirstId;
};

// One map per kind of handle: a session and an object may share a value.
struct Handles {
  HandleMap slots;
  HandleMap sessions;
  HandleMap objects;
};

}  // namespace kmu11

#endif
