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

// Only Uint8Array-shaped data; other typed arrays would silently reinterpret.
bool GetBytes(napi_env env, napi_value value, const CK_BYTE** data, size_t* length) {
  bool isTyped = false;
  napi_is_typedarray(env, value, &isTyped);
  if (isTyped) {
    napi_typedarray_type type;
    size_t count = 0;
    void* ptr = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &count, &ptr, nullptr, nullptr) != napi_ok) return false;
    if (type != napi_uint8_array && type != napi_int8_array && type != napi_uint8_clamped_array) return false;
    *data = static_cast<const CK_BYTE*>(ptr);
    *length = count;
    return true;
  }
  bool isBuffer = false;
  napi_is_buffer(env, value, &isBuffer);
  if (!isBuffer) return false;
  void* ptr = nullptr;
  if (napi_get_buffer_info(env, value, &ptr, length) != napi_ok) return false;
  *data = static_cast<const CK_BYTE*>(ptr);
  return true;
}

}  // namespace

bool TryUlong(napi_env env, napi_value value, CK_ULONG* out) {
  double d = 0;
  if (napi_get_value_double(env, value, &d) != napi_ok) return false;
  if (!(d >= 0 && d <= kMaxSafeInteger && std::floor(d) == d)) return false;
  *out = static_cast<CK_ULONG>(d);
  return true;
}

CK_ULONG ToUlong(napi_env env, napi_value value, const char* what) {
  CK_ULONG n = 0;
  if (!TryUlong(env, value, &n)) ThrowType(env, std::string(what) + " must be a non-negative safe integer");
  return n;
}

bool ToBool(napi_env env, napi_value value, const char* what) {
  bool b = false;
  if (napi_get_value_bool(env, value, &b) != napi_ok) ThrowType(env, std::string(what) + " must be a boolean");
  return b;
}

void ToBytes(napi_env env, napi_value value, const char* what, std::vector<CK_BYTE>& out, bool allowString) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, value, &type);
  if (allowString && type == napi_string) {
    size_t length = 0;
    napi_get_value_string_utf8(env, value, nullptr, 0, &length);
    out.resize(length + 1);
    napi_get_value_string_utf8(env, value, reinterpret_cast<char*>(out.data()), length + 1, &length);
    out.resize(length);
    return;
  }
  const CK_BYTE* data = nullptr;
  size_t length = 0;
  if (type != napi_object || !GetBytes(env, value, &data, &length)) {
    ThrowType(env, std::string(what) + (allowString ? " must be a string or a Buffer" : " must be a Buffer"));
  }
  out.assign(data, data + length);
}

std::vector<CK_ULONG> ToUlongArray(napi_env env, napi_value value, const char* what) {
  bool isArray = false;
  napi_is_array(env, value, &isArray);
  if (!isArray) ThrowType(env, std::string(what) + " must be an array of numbers");
  uint32_t length = 0;
  napi_get_array_length(env, value, &length);
  std::vector<CK_ULONG> out(length);
  std::string itemName;
  for (uint32_t i = 0; i < length; ++i) {
    napi_value item;
    napi_get_element(env, value, i, &item);
    if (!TryUlong(env, item, &out[i])) {
      ThrowType(env, std::string(what) + "[" + std::to_string(i) + "] must be a non-negative safe integer");
    }
  }
  return out;
}

napi_value FromUlong(napi_env env, CK_ULONG value) {
  if (static_cast<double>(value) > kMaxSafeInteger) {
    throw Napi::RangeError::New(env, "module returned a CK_ULONG beyond Number.MAX_SAFE_INTEGER");
  }
  napi_value result;
  napi_create_double(env, static_cast<double>(value), &result);
  return result;
}

napi_value FromUlongArray(napi_env env, const CK_ULONG* values, size_t count) {
  napi_value array;
  napi_create_array_with_length(env, count, &array);
  for (size_t i = 0; i < count; ++i) napi_set_element(env, array, static_cast<uint32_t>(i), FromUlong(env, values[i]));
  return array;
}

napi_value FromHandle(napi_env env, CK_ULONG handle, HandleMap& map) {
  CK_ULONG id = map.ToJs(handle);
  if (id == 0 && handle != 0) throw Napi::RangeError::New(env, "module returned more large handles than can be named");
  return FromUlong(env, id);
}

napi_value FromHandleArray(napi_env env, const CK_ULONG* handles, size_t count, HandleMap& map) {
  napi_value array;
  napi_create_array_with_length(env, count, &array);
  for (size_t i = 0; i < count; ++i) napi_set_element(env, array, static_cast<uint32_t>(i), FromHandle(env, handles[i], map));
  return array;
}

napi_value FromBytes(napi_env env, const CK_BYTE* data, size_t length) {
  napi_value buffer;
  void* copy = nullptr;
  if (napi_create_buffer_copy(env, length, data, &copy, &buffer) != napi_ok) {
    throw Napi::Error::New(env, "cannot allocate a Buffer");
  }
  return buffer;
}

void Template::Parse(napi_env env, napi_value value, const char* what, bool optional) {
  attributes_.clear();
  storage_.clear();
  napi_valuetype vt = napi_undefined;
  napi_typeof(env, value, &vt);
  if (optional && (vt == napi_undefined || vt == napi_null)) return;
  bool isArray = false;
  napi_is_array(env, value, &isArray);
  if (!isArray) ThrowType(env, std::string(what) + " must be an array of {type, value} attributes");

  uint32_t count = 0;
  napi_get_array_length(env, value, &count);
  attributes_.resize(count);
  // Offsets into storage_ until the block stops growing; SIZE_MAX = NULL value.
  std::vector<size_t> offsets(count, SIZE_MAX);
  storage_.reserve(static_cast<size_t>(count) * 16);

  AddonData* data = AddonData::Get(env);
  napi_value keyType = data->Get(env, Key::Type);
  napi_value keyValue = data->Get(env, Key::Value);

  auto reserve = [this](size_t bytes) {
    size_t offset = (storage_.size() + 7) & ~static_cast<size_t>(7);  // CK_ULONG-aligned
    storage_.resize(offset + bytes);
    return offset;
  };
  auto name = [what](uint32_t i, const char* field) {
    return std::string(what) + "[" + std::to_string(i) + "]" + field;
  };

  for (uint32_t i = 0; i < count; ++i) {
    napi_value item;
    napi_get_element(env, value, i, &item);
    napi_valuetype itemType = napi_undefined;
    napi_typeof(env, item, &itemType);
    if (itemType != napi_object) ThrowType(env, name(i, "") + " must be an object {type, value}");

    napi_value typeValue;
    napi_get_property(env, item, keyType, &typeValue);
    CK_ATTRIBUTE& attr = attributes_[i];
    if (!TryUlong(env, typeValue, &attr.type)) ThrowType(env, name(i, ".type") + " must be a non-negative safe integer");

    napi_value v;
    napi_get_property(env, item, keyValue, &v);
    napi_valuetype valueType = napi_undefined;
    napi_typeof(env, v, &valueType);
    switch (valueType) {
      case napi_boolean: {
        bool b = false;
        napi_get_value_bool(env, v, &b);
        size_t off = reserve(sizeof(CK_BBOOL));
        storage_[off] = b ? CK_TRUE : CK_FALSE;
        offsets[i] = off;
        attr.ulValueLen = sizeof(CK_BBOOL);
        break;
      }
      case napi_number: {
        CK_ULONG n = 0;
        if (!TryUlong(env, v, &n)) ThrowType(env, name(i, ".value") + " must be a non-negative safe integer");
        size_t off = reserve(sizeof(CK_ULONG));
        std::memcpy(&storage_[off], &n, sizeof n);
        offsets[i] = off;
        attr.ulValueLen = sizeof(CK_ULONG);
        break;
      }
      case napi_string: {
        size_t length = 0;
        napi_get_value_string_utf8(env, v, nullptr, 0, &length);
        size_t off = reserve(length + 1);  // napi writes a NUL we do not count
        napi_get_value_string_utf8(env, v, reinterpret_cast<char*>(&storage_[off]), length + 1, &length);
        offsets[i] = off;
        attr.ulValueLen = length;
        break;
      }
      case napi_null:
        attr.pValue = nullptr;
        attr.ulValueLen = 0;
        break;
      case napi_object: {
        const CK_BYTE* bytes = nullptr;
        size_t length = 0;
        if (GetBytes(env, v, &bytes, &length)) {
          size_t off = reserve(length);
          if (length) std::memcpy(&storage_[off], bytes, length);
          offsets[i] = off;
          attr.ulValueLen = length;
          break;
        }
        [[fallthrough]];
      }
      default:
        ThrowType(env, name(i, ".value") + " must be a boolean, number, string, Buffer or null");
    }
  }
  for (uint32_t i = 0; i < count; ++i) {
    attributes_[i].pValue = offsets[i] == SIZE_MAX ? nullptr : storage_.data() + offsets[i];
  }
}

void Mechanism::Parse(napi_env env, napi_value value, const char* what) {
  napi_valuetype vt = napi_undefined;
  napi_typeof(env, value, &vt);
  if (vt != napi_object) ThrowType(env, std::string(what) + " must be an object {mechanism, parameter?}");
  AddonData* data = AddonData::Get(env);
  napi_value m;
  napi_get_property(env, value, data->Get(env, Key::Mechanism), &m);
  if (!TryUlong(env, m, &mechanism_.mechanism)) {
    ThrowType(env, std::string(what) + ".mechanism must be a non-negative safe integer");
  }
  mechanism_.pParameter = nullptr;
  mechanism_.ulParameterLen = 0;

  napi_value p;
  napi_get_property(env, value, data->Get(env, Key::Parameter), &p);
  napi_valuetype pt = napi_undefined;
  napi_typeof(env, p, &pt);
  if (pt == napi_undefined || pt == napi_null) return;
  if (pt == napi_number) {
    if (!TryUlong(env, p, &ulongParameter_)) {
      ThrowType(env, std::string(what) + ".parameter must be a non-negative safe integer");
    }
    mechanism_.pParameter = &ulongParameter_;
    mechanism_.ulParameterLen = sizeof(CK_ULONG);
    return;
  }
  const CK_BYTE* bytes = nullptr;
  size_t length = 0;
  if (pt != napi_object || !GetBytes(env, p, &bytes, &length)) {
    ThrowType(env, std::string(what) + ".parameter must be a Buffer, a number or undefined");
  }
  parameter_.assign(bytes, bytes + length);
  mechanism_.pParameter = parameter_.empty() ? nullptr : parameter_.data();
  mechanism_.ulParameterLen = parameter_.size();
}

}  // namespace kmu11
