#include "library.h"

#include <dlfcn.h>
#include <link.h>
#include <limits.h>
#include <stdlib.h>

#include <unordered_map>

namespace kmu11 {

namespace {

std::mutex registryMutex;
std::unordered_map<std::string, std::weak_ptr<Library>>& Registry() {
  static auto* registry = new std::unordered_map<std::string, std::weak_ptr<Library>>();
  return *registry;
}

}  // namespace

std::shared_ptr<Library> Library::Acquire(const std::string& path, std::string& error, CK_RV& rv) {
  rv = CKR_OK;
  std::lock_guard<std::mutex> lock(registryMutex);
  auto& registry = Registry();

  // The registry key is the library's real path. A path that does not
  // resolve (a bare soname such as "libsofthsm2.so", or a missing file) goes
  // to dlopen as given: it searches the library path or reports why not.
  std::string real;
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) != nullptr) {
    real = resolved;
    auto it = registry.find(real);
    if (it != registry.end()) {
      if (auto existing = it->second.lock()) return existing;
    }
  }

  dlerror();
  void* handle = dlopen(real.empty() ? path.c_str() : real.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    error = "cannot load PKCS#11 module '" + path + "': " + (why ? why : "dlopen failed");
    return nullptr;
  }
  if (real.empty()) {
    struct link_map* map = nullptr;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
        ::realpath(map->l_name, resolved) != nullptr) {
      real = resolved;
    } else {
      real = path;
    }
    auto it = registry.find(real);
    if (it != registry.end()) {
      if (auto existing = it->second.lock()) {
        dlclose(handle);  // the loaded record already holds a reference
        return existing;
      }
    }
  }

  auto getFunctionList = reinterpret_cast<CK_C_GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  if (getFunctionList == nullptr) {
    const char* why = dlerror();
    error = "cannot load PKCS#11 module '" + path + "': no C_GetFunctionList (" + (why ? why : "dlsym failed") + ")";
    dlclose(handle);
    return nullptr;
  }
  CK_FUNCTION_LIST* functions = nullptr;
  rv = getFunctionList(&functions);
  if (rv == CKR_OK && functions == nullptr) rv = CKR_GENERAL_ERROR;
  if (rv != CKR_OK) {
    dlclose(handle);
    return nullptr;
  }
  std::shared_ptr<Library> lib(new Library(real, handle, functions));
  registry[real] = lib;
  return lib;
}

Library::~Library() {
  {
    std::lock_guard<std::mutex> lock(registryMutex);
    auto& registry = Registry();
    auto it = registry.find(realpath_);
    if (it != registry.end() && it->second.expired()) registry.erase(it);
  }
  // The last reference went while still initialised: a Module garbage-collected without
  // close(). No call is in flight (each holds a reference), so finalize here; a module still
  // initialised must never be unmapped (its threads and handlers would run unmapped code).
  if (initRefs_ > 0) {
    if (!ownsInit_) return;  // someone else initialised it and will finalize it
    if (functions_->C_Finalize(nullptr) != CKR_OK) return;
  }
  dlclose(handle_);
}

CK_RV Library::AddInitRef() {
  std::lock_guard<std::mutex> lock(initMutex_);
  if (initRefs_ == 0) {
    // Always OS locking: without it SoftHSM (and others) turn their own locks
    // off, and our calls do run on several threads at once.
    CK_C_INITIALIZE_ARGS args;
    args.CreateMutex = nullptr;
    args.DestroyMutex = nullptr;
    args.LockMutex = nullptr;
    args.UnlockMutex = nullptr;
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = nullptr;
    CK_RV rv = functions_->C_Initialize(&args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ownsInit_ = false;  // another binding in this process did it; leave C_Finalize to it
    } else if (rv == CKR_OK) {
      ownsInit_ = true;
    } else {
      return rv;
    }
    std::unique_lock<std::shared_mutex> gate(gate_);
    live_ = true;
  }
  ++initRefs_;
  return CKR_OK;
}

CK_RV Library::DropInitRef() {
  std::lock_guard<std::mutex> lock(initMutex_);
  if (initRefs_ == 0) return CKR_CRYPTOKI_NOT_INITIALIZED;
  if (--initRefs_ > 0) return CKR_OK;
  std::unique_lock<std::shared_mutex> gate(gate_);  // waits for calls in flight
  live_ = false;
  handles.slots.Clear();
  handles.sessions.Clear();
  handles.objects.Clear();
  if (!ownsInit_) return CKR_OK;
  ownsInit_ = false;
  return functions_->C_Finalize(nullptr);
}

}  // namespace kmu11
