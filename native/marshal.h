// JS → memory the job owns (copied on the main thread before queueing), and
// CK_ULONG → JS numbers. Bad arguments throw Napi::TypeError naming the argument.
#ifndef KMU11_MARSHAL_H
#define KMU11_MARSHAL_H

#include <napi.h>

#include <string>
#include <vector>

#include "handles.h"
#include "pkcs11.h"

namespace kmu11 {

constexpr double kMaxSafeInteger = 9007199254740991.0;

// Every Node-API call on a caller's value is checked: a failure (a getter or Proxy trap that
// threw, a value of the wrong kind) becomes a TypeError naming `what`, never a pending
// exception under ours or an uninitialised napi_value.
void Check(napi_env env, napi_status status, const std::string& what);
napi_valuetype TypeOf(napi_env env, napi_value value, const std::string& what);
napi_value GetProperty(napi_env env, napi_value object, napi_value key, const std::string& what);
bool IsArray(napi_env env, napi_value value, const std::string& what);
uint32_t ArrayLength(napi_env env, napi_value array, const std::string& what);
napi_value GetElement(napi_env env, napi_value array, uint32_t index, const std::string& what);

// A non-negative safe integer (handles, slot ids, flags, attribute types).
CK_ULONG ToUlong(napi_env env, napi_value value, const std::string& what);
bool ToBool(napi_env env, napi_value value, const std::string& what);
// string → UTF-8 bytes, Buffer/Uint8Array → bytes.
void ToBytes(napi_env env, napi_value value, const std::string& what, std::vector<CK_BYTE>& out, bool allowString);
std::vector<CK_ULONG> ToUlongArray(napi_env env, napi_value value, const std::string& what);

// Lengths and counts a module reports are bounded before anything is allocated for them.
constexpr CK_ULONG kMaxValueLength = 64UL << 20;  // bytes of one value or output
constexpr CK_ULONG kMaxListCount = 1UL << 20;      // entries of a slot or mechanism list

// Results (out of memory → Napi::Error). FromUlong throws RangeError for values a JS number
// cannot hold exactly.
napi_value FromUlong(napi_env env, CK_ULONG value);
napi_value FromUlongArray(napi_env env, const CK_ULONG* values, size_t count);
napi_value FromBytes(napi_env env, const CK_BYTE* data, size_t length);
// A module's handle → its JS id (handles.h).
napi_value FromHandle(napi_env env, CK_ULONG handle, HandleMap& map);
napi_value FromHandleArray(napi_env env, const CK_ULONG* handles, size_t count, HandleMap& map);

// [{type, value: Buffer}] (values encoded by src/p11/attributes.ts) as one
// CK_ATTRIBUTE array whose values live in one owned block.
class Template {
 public:
  Template() = default;
  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;

  void Parse(napi_env env, napi_value value, const char* what, bool optional = false);
  CK_ATTRIBUTE* data() { return attributes_.empty() ? nullptr : attributes_.data(); }
  CK_ULONG size() const { return static_cast<CK_ULONG>(attributes_.size()); }

 private:
  std::vector<CK_ATTRIBUTE> attributes_;
  std::vector<CK_BYTE> storage_;
};

// {mechanism, parameter?: Buffer|number|null|structured}. Structured parameters, for the
// mechanisms whose parameter holds pointers: {type: 'gcm', iv, aad, tagBits} (CK_GCM_PARAMS) and
// {type: 'rsaAes', aesKeyBits, hashAlg, mgf, sourceData} (CK_RSA_AES_KEY_WRAP_PARAMS → OAEP).
// The struct and the bytes it points to are owned here, so they live as long as the job. A
// module may write the GCM IV it generated into pIv (CloudHSM does): Finish copies it back into
// the caller's iv Buffer on the loop thread.
class Mechanism {
 public:
  Mechanism() = default;
  Mechanism(const Mechanism&) = delete;
  Mechanism& operator=(const Mechanism&) = delete;

  void Parse(napi_env env, napi_value value, const char* what);
  CK_MECHANISM* get() { return &mechanism_; }
  // Loop thread, once the call is over (from the job's Done): IV write-back on success, and the
  // reference to the caller's iv Buffer released either way.
  void Finish(napi_env env, bool ok);

 private:
  CK_MECHANISM mechanism_{0, nullptr, 0};
  void ParseStructured(napi_env env, napi_value p, const std::string& name);

  CK_ULONG ulongParameter_ = 0;
  std::vector<CK_BYTE> parameter_;
  std::vector<CK_BYTE> iv_, aad_, sourceData_;
  CK_GCM_PARAMS gcm_{};
  CK_RSA_PKCS_OAEP_PARAMS oaep_{};
  CK_RSA_AES_KEY_WRAP_PARAMS rsaAes_{};
  napi_ref ivRef_ = nullptr;
};

}  // namespace kmu11

#endif
