#include "errors.h"

#include <cstdio>
#include <string>

#include "addon_data.h"

namespace kmu11 {

// The addon reports the code and the function; src/p11 names the code and writes the message
// (its factory). Without a factory (the addon used on its own), a plain Error with both.
Napi::Value MakeCkError(Napi::Env env, CK_RV rv, const char* fn) {
  Napi::Number code = Napi::Number::New(env, static_cast<double>(rv));
  Napi::String fnName = Napi::String::New(env, fn);
  AddonData* data = AddonData::Get(env);
  if (!data->errorFactory.IsEmpty()) return data->errorFactory.Call({code, fnName});
  char hex[32];
  std::snprintf(hex, sizeof hex, "0x%lx", rv);
  Napi::Error error = Napi::Error::New(env, std::string(fn) + " failed: CK_RV " + hex);
  error.Set("code", code);
  error.Set("fn", fnName);
  return error.Value();
}

}  // namespace kmu11
