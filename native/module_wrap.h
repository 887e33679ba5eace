// The JS class `Module`: one handle on a PKCS#11 library. Methods are named
// after the PKCS#11 functions they call (composites: findObjects, sign, verify)
// and each returns a Promise, run off the event loop by the Dispatcher.
#ifndef KMU11_MODULE_WRAP_H
#define KMU11_MODULE_WRAP_H

#include <napi.h>

#include <memory>
#include <string>

#include "library.h"

namespace kmu11 {

class ModuleWrap : public Napi::ObjectWrap<ModuleWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit ModuleWrap(const Napi::CallbackInfo& info);

  enum class State { Closed, Opening, Open, Closing };

  // general (calls_general.cc)
  Napi::Value Initialize(const Napi::CallbackInfo& info);
  Napi::Value Finalize(const Napi::CallbackInfo& info);
  Napi::Value GetInfo(const Napi::CallbackInfo& info);
  Napi::Value GetSlotList(const Napi::CallbackInfo& info);
  Napi::Value GetSlotInfo(const Napi::CallbackInfo& info);
  Napi::Value GetTokenInfo(const Napi::CallbackInfo& info);
  Napi::Value GetMechanismList(const Napi::CallbackInfo& info);
  Napi::Value GetMechanismInfo(const Napi::CallbackInfo& info);
  Napi::Value InitToken(const Napi::CallbackInfo& info);
  Napi::Value PathGetter(const Napi::CallbackInfo& info);
  Napi::Value OpenGetter(const Napi::CallbackInfo& info);

  // sessions (calls_session.cc)
  Napi::Value OpenSession(const Napi::CallbackInfo& info);
  Napi::Value CloseSession(const Napi::CallbackInfo& info);
  Napi::Value Login(const Napi::CallbackInfo& info);
  Napi::Value Logout(const Napi::CallbackInfo& info);
  Napi::Value InitPIN(const Napi::CallbackInfo& info);

  // objects (calls_object.cc)
  Napi::Value FindObjects(const Napi::CallbackInfo& info);
  Napi::Value GetAttributeValue(const Napi::CallbackInfo& info);
  Napi::Value SetAttributeValue(const Napi::CallbackInfo& info);
  Napi::Value CopyObject(const Napi::CallbackInfo& info);
  Napi::Value DestroyObject(const Napi::CallbackInfo& info);

  // keys (calls_key.cc)
  Napi::Value GenerateKey(const Napi::CallbackInfo& info);
  Napi::Value GenerateKeyPair(const Napi::CallbackInfo& info);
  Napi::Value WrapKey(const Napi::CallbackInfo& info);

  // unwrapping, object creation, encryption (calls_cipher.cc)
  Napi::Value UnwrapKey(const Napi::CallbackInfo& info);
  Napi::Value CreateObject(const Napi::CallbackInfo& info);
  Napi::Value Encrypt(const Napi::CallbackInfo& info);
  Napi::Value Decrypt(const Napi::CallbackInfo& info);

  // signing, verification, random (calls_crypto.cc)
  Napi::Value Sign(const Napi::CallbackInfo& info);
  Napi::Value Verify(const Napi::CallbackInfo& info);
  Napi::Value GenerateRandom(const Napi::CallbackInfo& info);

  const std::shared_ptr<Library>& library() const { return lib_; }

  // Handle arguments, mapped to the module's values (handles.h).
  CK_SLOT_ID SlotArg(const Napi::CallbackInfo& info, size_t index);
  CK_SESSION_HANDLE SessionArg(const Napi::CallbackInfo& info, size_t index);
  CK_OBJECT_HANDLE ObjectArg(const Napi::CallbackInfo& info, size_t index, const char* what);
  Napi::Value QueueCipher(const Napi::CallbackInfo& info, bool encrypt);

 private:
  std::string path_;
  State state_ = State::Closed;
  std::shared_ptr<Library> lib_;  // set while Open

  friend class InitializeJob;
  friend class FinalizeJob;
};

// Argument helpers shared by the calls_*.cc files.
napi_value Arg(const Napi::CallbackInfo& info, size_t index);

}  // namespace kmu11

#endif
