// One loaded PKCS#11 module per realpath, shared by every handle in the
// process: dlopen + C_GetFunctionList once, C_Initialize once (refcounted),
// C_Finalize when the last initializer leaves, dlclose when the last
// reference (handle or in-flight job) goes.
#ifndef KMU11_LIBRARY_H
#define KMU11_LIBRARY_H

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "handles.h"
#include "pkcs11.h"

namespace kmu11 {

class Library {
 public:
  // Resolves the path, reuses a loaded record or dlopens a new one. On failure
  // returns null and fills either `error` (load problem) or `rv` (the module's
  // C_GetFunctionList failed).
  static std::shared_ptr<Library> Acquire(const std::string& path, std::string& error, CK_RV& rv);

  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  ~Library();

  // C_Initialize(CKF_OS_LOCKING_OK) for the first initializer only.
  CK_RV AddInitRef();
  // C_Finalize for the last initializer, after in-flight calls have returned.
  CK_RV DropInitRef();

  // Held for the duration of one call into the module so that C_Finalize
  // never runs while a call is in flight.
  class Call {
   public:
    explicit Call(Library& lib) : lock_(lib.gate_), functions_(lib.live_ ? lib.functions_ : nullptr) {}
    CK_FUNCTION_LIST* functions() const { return functions_; }

   private:
    std::shared_lock<std::shared_mutex> lock_;
    CK_FUNCTION_LIST* functions_;
  };

  const std::string& realpath() const { return realpath_; }

  // JS ids of this library's handles above 2^52; valid until C_Finalize.
  Handles handles;

 private:
  Library(std::string realpath, void* handle, CK_FUNCTION_LIST* functions)
      : realpath_(std::move(realpath)), handle_(handle), functions_(functions) {}

  const std::string realpath_;
  void* const handle_;
  CK_FUNCTION_LIST* const functions_;

  std::mutex initMutex_;
  int initRefs_ = 0;
  bool ownsInit_ = false;  // false when someone else in the process initialized it

  std::shared_mutex gate_;
  bool live_ = false;  // guarded by gate_
};

}  // namespace kmu11

#endif
