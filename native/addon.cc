// Entry point: the `Module` class and setErrorFactory.
#include <napi.h>

#include <cstddef>

#include "addon_data.h"
#include "errors.h"
#include "marshal.h"
#include "module_wrap.h"
#include "pkcs11.h"

namespace kmu11 {

// The ABI every Linux module is built with (LP64, natural alignment).
static_assert(sizeof(CK_ULONG) == sizeof(void*), "CK_ULONG must be pointer-sized on LP64 Linux");
static_assert(sizeof(CK_ATTRIBUTE) == 3 * sizeof(CK_ULONG), "CK_ATTRIBUTE layout");
static_assert(sizeof(CK_MECHANISM) == 3 * sizeof(CK_ULONG), "CK_MECHANISM layout");
static_assert(offsetof(CK_INFO, flags) == 40 && sizeof(CK_INFO) == 88, "CK_INFO layout");
static_assert(offsetof(CK_SLOT_INFO, flags) == 96 && sizeof(CK_SLOT_INFO) == 112, "CK_SLOT_INFO layout");
static_assert(offsetof(CK_TOKEN_INFO, flags) == 96 && offsetof(CK_TOKEN_INFO, utcTime) == 188 &&
                  sizeof(CK_TOKEN_INFO) == 208,
              "CK_TOKEN_INFO layout");
static_assert(sizeof(CK_C_INITIALIZE_ARGS) == 6 * sizeof(void*), "CK_C_INITIALIZE_ARGS layout");
static_assert(offsetof(CK_FUNCTION_LIST, C_Initialize) == sizeof(void*), "CK_FUNCTION_LIST layout");
static_assert(sizeof(CK_FUNCTION_LIST) == 69 * sizeof(void*), "CK_FUNCTION_LIST has 68 functions");

Napi::Function ModuleWrap::Define(Napi::Env env) {
  return DefineClass(env, "Module",
                     {
                         InstanceAccessor<&ModuleWrap::PathGetter>("path"),
                         InstanceAccessor<&ModuleWrap::OpenGetter>("isOpen"),
                         InstanceMethod<&ModuleWrap::Initialize>("C_Initialize"),
                         InstanceMethod<&ModuleWrap::Finalize>("C_Finalize"),
                         InstanceMethod<&ModuleWrap::GetInfo>("C_GetInfo"),
                         InstanceMethod<&ModuleWrap::GetSlotList>("C_GetSlotList"),
                         InstanceMethod<&ModuleWrap::GetSlotInfo>("C_GetSlotInfo"),
                         InstanceMethod<&ModuleWrap::GetTokenInfo>("C_GetTokenInfo"),
                         InstanceMethod<&ModuleWrap::GetMechanismList>("C_GetMechanismList"),
                         InstanceMethod<&ModuleWrap::GetMechanismInfo>("C_GetMechanismInfo"),
                         InstanceMethod<&ModuleWrap::InitToken>("C_InitToken"),
                         InstanceMethod<&ModuleWrap::InitPIN>("C_InitPIN"),
                         InstanceMethod<&ModuleWrap::OpenSession>("C_OpenSession"),
                         InstanceMethod<&ModuleWrap::CloseSession>("C_CloseSession"),
                         InstanceMethod<&ModuleWrap::Login>("C_Login"),
                         InstanceMethod<&ModuleWrap::Logout>("C_Logout"),
                         InstanceMethod<&ModuleWrap::GenerateKeyPair>("C_GenerateKeyPair"),
                         InstanceMethod<&ModuleWrap::GenerateKey>("C_GenerateKey"),
                         InstanceMethod<&ModuleWrap::FindObjects>("findObjects"),
                         InstanceMethod<&ModuleWrap::GetAttributeValue>("C_GetAttributeValue"),
                         InstanceMethod<&ModuleWrap::SetAttributeValue>("C_SetAttributeValue"),
                         InstanceMethod<&ModuleWrap::CopyObject>("C_CopyObject"),
                         InstanceMethod<&ModuleWrap::DestroyObject>("C_DestroyObject"),
                         InstanceMethod<&ModuleWrap::Sign>("sign"),
                         InstanceMethod<&ModuleWrap::Verify>("verify"),
                         InstanceMethod<&ModuleWrap::WrapKey>("C_WrapKey"),
                         InstanceMethod<&ModuleWrap::GenerateRandom>("C_GenerateRandom"),
                         InstanceMethod<&ModuleWrap::UnwrapKey>("C_UnwrapKey"),
                         InstanceMethod<&ModuleWrap::CreateObject>("C_CreateObject"),
                         InstanceMethod<&ModuleWrap::Encrypt>("encrypt"),
                         InstanceMethod<&ModuleWrap::Decrypt>("decrypt"),
                     });
}

ModuleWrap::ModuleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleWrap>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "Module must be called with new");
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  path_ = info[0].As<Napi::String>().Utf8Value();
  if (path_.empty()) throw Napi::TypeError::New(env, "path must not be empty");
}

namespace {

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData* data = AddonData::Get(env);
  if (info.Length() >= 1 && (info[0].IsNull() || info[0].IsUndefined())) {
    data->errorFactory.Reset();
    return env.Undefined();
  }
  if (info.Length() < 1 || !info[0].IsFunction()) {
    throw Napi::TypeError::New(env, "factory must be a function (code, fn) => Error, or null");
  }
  data->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  const char* keyNames[] = {"type", "value", "mechanism", "parameter", "unavailable",
                            "publicKey", "privateKey", "publicAttributes", "privateAttributes", "readError"};
  static_assert(sizeof keyNames / sizeof keyNames[0] == static_cast<size_t>(Key::Count), "one name per Key");
  Napi::Array keys = Napi::Array::New(env, static_cast<size_t>(Key::Count));
  for (uint32_t i = 0; i < static_cast<uint32_t>(Key::Count); ++i) keys.Set(i, Napi::String::New(env, keyNames[i]));
  data->keys = Napi::Persistent(keys.As<Napi::Object>());
  try {
    data->dispatcher = std::make_unique<Dispatcher>(env);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }

  Napi::Function ctor = ModuleWrap::Define(env);
  data->moduleConstructor = Napi::Persistent(ctor);
  exports.Set("Module", ctor);
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory, "setErrorFactory"));
  return exports;
}

}  // namespace

}  // namespace kmu11

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return kmu11::Init(env, exports); }

NODE_API_MODULE(kmu11_pkcs11, InitAddon)
