// Per-environment state (safe with worker_threads): the error factory, the
// Module constructor, property keys created once instead of per call, and the
// Dispatcher that runs the environment's jobs.
#ifndef KMU11_ADDON_DATA_H
#define KMU11_ADDON_DATA_H

#include <napi.h>

#include <cstdint>
#include <memory>

#include "dispatcher.h"

namespace kmu11 {

// Strings used on every call; Node-API 9 cannot reference primitives directly,
// so they live in one referenced array.
enum class Key : uint32_t { Type, Value, Mechanism, Parameter, Unavailable, PublicKey, PrivateKey, PublicAttributes, PrivateAttributes, ReadError, Count };

struct AddonData {
  Napi::FunctionReference errorFactory;
  Napi::FunctionReference moduleConstructor;
  Napi::ObjectReference keys;
  std::unique_ptr<Dispatcher> dispatcher;

  napi_value Get(napi_env env, Key key) const {
    napi_value array = nullptr, value = nullptr;
    if (napi_get_reference_value(env, keys, &array) != napi_ok || array == nullptr ||
        napi_get_element(env, array, static_cast<uint32_t>(key), &value) != napi_ok) {
      throw Napi::Error::New(env, "kmu11 addon: property names unavailable");
    }
    return value;
  }

  static AddonData* Get(napi_env env) {
    void* data = nullptr;
    if (napi_get_instance_data(env, &data) != napi_ok || data == nullptr) {
      throw Napi::Error::New(env, "kmu11 addon: not initialised in this environment");
    }
    return static_cast<AddonData*>(data);
  }
};

}  // namespace kmu11

#endif
