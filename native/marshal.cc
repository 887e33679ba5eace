#include "marshal.h"

#include <cmath>
#include <cstring>
#include <string>

#include "addon_data.h"

namespace kmu11 {

namespace {

[[noreturn]] void ThrowType(napi_env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

// A failed Node-API status → Check's TypeError; the argument's name is only built then (templates
// are parsed on every call, and "publicTemplate[3].value" costs allocations each time).
template <class Name>
inline void CheckNamed(napi_env env, napi_status status, Name&& name) {
  if (status != napi_ok) Check(env, status, name());
}

// Only Uint8Array-shaped data; other typed arrays would silently reinterpret.
template <class Name>
bool GetBytesNamed(napi_env env, napi_value value, Name&& what, const CK_BYTE** data, size_t* length) {
  bool isTyped = false;
  CheckNamed(env, napi_is_typedarray(env, value, &isTyped), what);
  if (isTyped) {
    napi_typedarray_type type = napi_int16_array;
    size_t count = 0;
    void* ptr = nullptr;
    CheckNamed(env, napi_get_typedarray_info(env, value, &type, &count, &ptr, nullptr, nullptr), what);
    if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) return false;
    *data = static_cast<const CK_BYTE*>(ptr);
    *length = ptr ? count : 0;  // a detached buffer has no data
    return true;
  }
  bool isBuffer = false;
  CheckNamed(env, napi_is_buffer(env, value, &isBuffer), what);
  if (!isBuffer) return false;
  void* ptr = nullptr;
  size_t count = 0;
  CheckNamed(env, napi_get_buffer_info(env, value, &ptr, &count), what);
  *data = static_cast<const CK_BYTE*>(ptr);
  *length = ptr ? count : 0;
  return true;
}

bool GetBytes(napi_env env, napi_value value, const std::string& what, const CK_BYTE** data, size_t* length) {
  return GetBytesNamed(env, value, [&what] { return what; }, data, length);
}

}  // namespace

void Check(napi_env env, napi_status status, const std::string& what) {
  if (status == napi_ok) return;
  // A getter or Proxy trap of the caller's value threw: that exception must not stay pending
  // under ours (Node aborts on a throw with an exception pending).
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    ThrowType(env, what + " could not be read (a getter or Proxy threw)");
  }
  ThrowType(env, what + " is not a value kmu11 can read");
}

napi_valuetype TypeOf(napi_env env, napi_value value, const std::string& what) {
  napi_valuetype type = napi_undefined;
  Check(env, napi_typeof(env, value, &type), what);
  return type;
}

napi_value GetProperty(napi_env env, napi_value object, napi_value key, const std::string& what) {
  napi_value value = nullptr;
  Check(env, napi_get_property(env, object, key, &value), what);
  return value;
}

bool IsArray(napi_env env, napi_value value, const std::string& what) {
  bool isArray = false;
  Check(env, napi_is_array(env, value, &isArray), what);
  return isArray;
}

// An array's length and elements (accessor elements run their getters, checked).
uint32_t ArrayLength(napi_env env, napi_value array, const std::string& what) {
  uint32_t length = 0;
  Check(env, napi_get_array_length(env, array, &length), what);
  return length;
}

napi_value GetElement(napi_env env, napi_value array, uint32_t index, const std::string& what) {
  napi_value value = nullptr;
  Check(env, napi_get_element(env, array, index, &value), what);
  return value;
}

static bool TryUlong(napi_env env, napi_value value, CK_ULONG* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!(d >= 0 && d <= kMaxSafeInteger && std::floor(d) == d)) return false;
  *out = static_cast<CK_ULONG>(d);
  return true;
}

CK_ULONG ToUlong(napi_env env, napi_value value, const std::string& what) {
  CK_ULONG n = 0;
  if (TypeOf(env, value, what) != napi_number || !TryUlong(env, value, &n)) {
    ThrowType(env, what + " must be a non-negative safe integer");
  }
  return n;
}

bool ToBool(napi_env env, napi_value value, const std::string& what) {
  bool b = false;
  if (TypeOf(env, value, what) != napi_boolean) ThrowType(env, what + " must be a boolean");
  Check(env, napi_get_value_bool(env, value, &b), what);
  return b;
}

void ToBytes(napi_env env, napi_value value, const std::string& what, std::vector<CK_BYTE>& out, bool allowString) {
  napi_valuetype type = TypeOf(env, value, what);
  if (allowString && type == napi_string) {
    size_t length = 0;
    Check(env, napi_get_value_string_utf8(env, value, nullptr, 0, &length), what);
    out.resize(length + 1);
    Check(env, napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(out.data()), length + 1, &length), what);
    out.resize(length);
    return;
  }
  const CK_BYTE* data = nullptr;
  size_t length = 0;
  if (type != napi_object || !GetBytes(env, value, what, &data, &length)) {
    ThrowType(env, what + (allowString ? " must be a string or a Buffer" : " must be a Buffer"));
  }
  out.assign(data, data + length);
}

std::vector<CK_ULONG> ToUlongArray(napi_env env, napi_value value, const std::string& what) {
  if (!IsArray(env, value, what)) ThrowType(env, what + " must be an array of numbers");
  uint32_t length = ArrayLength(env, value, what);
  std::vector<CK_ULONG> out(length);
  for (uint32_t i = 0; i < length; ++i) {
    auto item = [&] { return what + "[" + std::to_string(i) + "]"; };
    napi_value element = nullptr;
    napi_valuetype type = napi_undefined;
    CheckNamed(env, napi_get_element(env, value, i, &element), item);
    CheckNamed(env, napi_typeof(env, element, &type), item);
    if (type != napi_number || !TryUlong(env, element, &out[i])) ThrowType(env, item() + " must be a non-negative safe integer");
  }
  return out;
}

napi_value FromUlong(napi_env env, CK_ULONG value) {
  if (static_cast<double>(value) > kMaxSafeInteger) {
    throw Napi::RangeError::New(env, "module returned a CK_ULONG beyond Number.MAX_SAFE_INTEGER");
  }
  return Napi::Number::New(env, static_cast<double>(value));
}

napi_value FromUlongArray(napi_env env, const CK_ULONG* values, size_t count) {
  Napi::Array array = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) array.Set(static_cast<uint32_t>(i), FromUlong(env, values[i]));
  return array;
}

napi_value FromHandle(napi_env env, CK_ULONG handle, HandleMap& map) {
  CK_ULONG id = map.ToJs(handle);
  if (id == 0 && handle != 0) throw Napi::RangeError::New(env, "module returned more large handles than can be named");
  return FromUlong(env, id);
}

napi_value FromHandleArray(napi_env env, const CK_ULONG* handles, size_t count, HandleMap& map) {
  Napi::Array array = Napi::Array::New(env, count);
  for (size_t i = 0; i < count; ++i) array.Set(static_cast<uint32_t>(i), FromHandle(env, handles[i], map));
  return array;
}

napi_value FromBytes(napi_env env, const CK_BYTE* data, size_t length) {
  return Napi::Buffer<CK_BYTE>::Copy(env, data, length);
}

void Template::Parse(napi_env env, napi_value value, const char* what, bool optional) {
  attributes_.clear();
  storage_.clear();
  napi_valuetype vt = TypeOf(env, value, what);
  if (optional && (vt == napi_undefined || vt == napi_null)) return;
  if (!IsArray(env, value, what)) ThrowType(env, std::string(what) + " must be an array of {type, value} attributes");

  uint32_t count = ArrayLength(env, value, what);
  attributes_.resize(count);
  std::vector<size_t> offsets(count);  // into storage_, which may still move while it grows
  storage_.reserve(static_cast<size_t>(count) * 16);
  AddonData* data = AddonData::Get(env);
  napi_value keyType = data->Get(env, Key::Type);
  napi_value keyValue = data->Get(env, Key::Value);
  auto name = [what](uint32_t i, const char* field) {
    return std::string(what) + "[" + std::to_string(i) + "]" + field;
  };

  for (uint32_t i = 0; i < count; ++i) {
    auto itemName = [&] { return name(i, ""); };
    auto typeName = [&] { return name(i, ".type"); };
    auto valueName = [&] { return name(i, ".value"); };
    napi_value item = nullptr, typeValue = nullptr, v = nullptr;
    napi_valuetype t = napi_undefined;
    CheckNamed(env, napi_get_element(env, value, i, &item), itemName);
    CheckNamed(env, napi_typeof(env, item, &t), itemName);
    if (t != napi_object) ThrowType(env, itemName() + " must be an object {type, value}");
    CK_ATTRIBUTE& attr = attributes_[i];
    CheckNamed(env, napi_get_property(env, item, keyType, &typeValue), typeName);
    CheckNamed(env, napi_typeof(env, typeValue, &t), typeName);
    if (t != napi_number || !TryUlong(env, typeValue, &attr.type)) ThrowType(env, typeName() + " must be a non-negative safe integer");
    // Values arrive encoded (src/p11/attributes.ts knows each attribute's PKCS#11 type).
    const CK_BYTE* bytes = nullptr;
    size_t length = 0;
    CheckNamed(env, napi_get_property(env, item, keyValue, &v), valueName);
    CheckNamed(env, napi_typeof(env, v, &t), valueName);
    if (t != napi_object || !GetBytesNamed(env, v, valueName, &bytes, &length)) {
      ThrowType(env, valueName() + " must be a Buffer (the attribute's encoded value)");
    }
    offsets[i] = (storage_.size() + 7) & ~static_cast<size_t>(7);  // CK_ULONG-aligned
    storage_.resize(offsets[i] + length);
    if (length) std::memcpy(&storage_[offsets[i]], bytes, length);
    attr.ulValueLen = length;
  }
  for (uint32_t i = 0; i < count; ++i) attributes_[i].pValue = storage_.data() + offsets[i];
}

void Mechanism::Parse(napi_env env, napi_value value, const char* what) {
  // Names built only for an error (this runs on every call).
  auto name = [what](const char* field) { return std::string(what) + field; };
  auto mechanismName = [&] { return name(".mechanism"); };
  auto parameterName = [&] { return name(".parameter"); };
  napi_valuetype t = napi_undefined;
  CheckNamed(env, napi_typeof(env, value, &t), [&] { return name(""); });
  if (t != napi_object) ThrowType(env, name(" must be an object {mechanism, parameter?}"));
  AddonData* data = AddonData::Get(env);
  napi_value m = nullptr;
  CheckNamed(env, napi_get_property(env, value, data->Get(env, Key::Mechanism), &m), mechanismName);
  CheckNamed(env, napi_typeof(env, m, &t), mechanismName);
  if (t != napi_number || !TryUlong(env, m, &mechanism_.mechanism)) ThrowType(env, mechanismName() + " must be a non-negative safe integer");
  mechanism_.pParameter = nullptr;
  mechanism_.ulParameterLen = 0;

  napi_value p = nullptr;
  CheckNamed(env, napi_get_property(env, value, data->Get(env, Key::Parameter), &p), parameterName);
  napi_valuetype pt = napi_undefined;
  CheckNamed(env, napi_typeof(env, p, &pt), parameterName);
  if (pt == napi_undefined || pt == napi_null) return;
  const std::string name_(what);  // parameters are rarer: the old eager names from here on
  if (pt == napi_number) {
    ulongParameter_ = ToUlong(env, p, name_ + ".parameter");
    mechanism_.pParameter = &ulongParameter_;
    mechanism_.ulParameterLen = sizeof(CK_ULONG);
    return;
  }
  const CK_BYTE* bytes = nullptr;
  size_t length = 0;
  if (pt != napi_object) ThrowType(env, name_ + ".parameter must be a Buffer, a number, a structured parameter or undefined");
  if (!GetBytes(env, p, name_ + ".parameter", &bytes, &length)) return ParseStructured(env, p, name_ + ".parameter");
  parameter_.assign(bytes, bytes + length);
  mechanism_.pParameter = parameter_.empty() ? nullptr : parameter_.data();
  mechanism_.ulParameterLen = parameter_.size();
}

namespace {

napi_value Named(napi_env env, napi_value object, const char* key, const std::string& what) {
  napi_value k = nullptr;
  Check(env, napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &k), what);
  return GetProperty(env, object, k, what);
}

// Optional bytes (undefined/null → empty), bounded like every value.
void OptionalBytes(napi_env env, napi_value object, const char* key, const std::string& what, std::vector<CK_BYTE>& out) {
  napi_value v = Named(env, object, key, what);
  napi_valuetype t = TypeOf(env, v, what);
  out.clear();
  if (t == napi_undefined || t == napi_null) return;
  ToBytes(env, v, what, out, false);
  if (out.size() > kMaxValueLength) ThrowType(env, what + " is too long");
}

}  // namespace

void Mechanism::ParseStructured(napi_env env, napi_value p, const std::string& name) {
  AddonData* data = AddonData::Get(env);
  napi_value type = GetProperty(env, p, data->Get(env, Key::Type), name + ".type");
  char kind[16] = {0};
  size_t kindLength = 0;
  if (TypeOf(env, type, name + ".type") != napi_string ||
      napi_get_value_string_utf8(env, type, kind, sizeof kind, &kindLength) != napi_ok) {
    ThrowType(env, name + " must be a Buffer, a number or {type: 'gcm' | 'rsaAes', ...}");
  }
  const std::string k(kind, kindLength);
  if (k == "gcm") {
    OptionalBytes(env, p, "iv", name + ".iv", iv_);
    napi_value iv = Named(env, p, "iv", name + ".iv");
    if (!iv_.empty()) Check(env, napi_create_reference(env, iv, 1, &ivRef_), name + ".iv");
    OptionalBytes(env, p, "aad", name + ".aad", aad_);
    gcm_.pIv = iv_.empty() ? nullptr : iv_.data();
    gcm_.ulIvLen = iv_.size();
    gcm_.ulIvBits = iv_.size() * 8;
    gcm_.pAAD = aad_.empty() ? nullptr : aad_.data();
    gcm_.ulAADLen = aad_.size();
    gcm_.ulTagBits = ToUlong(env, Named(env, p, "tagBits", name + ".tagBits"), name + ".tagBits");
    mechanism_.pParameter = &gcm_;
    mechanism_.ulParameterLen = sizeof gcm_;
  } else if (k == "rsaAes") {
    rsaAes_.ulAESKeyBits = ToUlong(env, Named(env, p, "aesKeyBits", name + ".aesKeyBits"), name + ".aesKeyBits");
    oaep_.hashAlg = ToUlong(env, Named(env, p, "hashAlg", name + ".hashAlg"), name + ".hashAlg");
    oaep_.mgf = ToUlong(env, Named(env, p, "mgf", name + ".mgf"), name + ".mgf");
    OptionalBytes(env, p, "sourceData", name + ".sourceData", sourceData_);
    oaep_.source = 1;  // CKZ_DATA_SPECIFIED, the only source PKCS#11 defines
    oaep_.pSourceData = sourceData_.empty() ? nullptr : sourceData_.data();
    oaep_.ulSourceDataLen = sourceData_.size();
    rsaAes_.pOAEPParams = &oaep_;
    mechanism_.pParameter = &rsaAes_;
    mechanism_.ulParameterLen = sizeof rsaAes_;
  } else {
    ThrowType(env, name + ".type must be 'gcm' or 'rsaAes'");
  }
}

void Mechanism::Finish(napi_env env, bool ok) {
  if (ivRef_ == nullptr) return;
  napi_value iv = nullptr;
  const CK_BYTE* bytes = nullptr;
  size_t length = 0;
  if (ok && napi_get_reference_value(env, ivRef_, &iv) == napi_ok && iv != nullptr) {
    try {
      if (GetBytes(env, iv, "iv", &bytes, &length) && length == iv_.size() && length > 0)
        std::memcpy(const_cast<CK_BYTE*>(bytes), iv_.data(), length);
    } catch (const Napi::Error&) {
      // The caller's Buffer cannot be read any more: nothing to write back into.
    }
  }
  napi_delete_reference(env, ivRef_);
  ivRef_ = nullptr;
}

}  // namespace kmu11
